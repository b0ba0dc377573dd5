/**
 * Child process for the kill-mid-fold tests (metric-chunks.int.test.ts): folds as told, then is SIGKILLed by the
 * test. `mid`: prints "mid" inside the fold's transaction (chunks written, tail not yet deleted) and waits there.
 * `loop`: folds every pending (run, key) in a loop, printing "go" once started.
 */
import { createDb, foldKey, foldPending } from '../src';

const [url, mode, runNum, keyId] = process.argv.slice(2);
const db = createDb({ connectionString: url!, max: 2 });
if (mode === 'mid') {
  await foldKey(db.pool, runNum!, Number(keyId), {
    force: true,
    beforeTailDelete: async () => {
      process.stdout.write('mid\n');
      await new Promise((r) => setTimeout(r, 60_000));
    },
  });
} else {
  process.stdout.write('go\n');
  for (;;) await foldPending(db.pool, { chunkPoints: 100 });
}
