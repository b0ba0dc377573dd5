/**
 * `npm run bench:ingest`: 4 concurrent SDK writers (separate processes) push 1,000,000 points through the HTTP
 * API of the built app (`next start`) into a fresh Postgres database. Prints JSON with points/s and where the
 * time goes (server CPU, Postgres CPU, writers' CPU), then checks every point was stored exactly once.
 *   npm run bench:ingest -- --points 1000000 --writers 4
 */
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { countStoredPoints } from '@aft/db';
import pg from 'pg';
import { ensureWebBuilt, ROOT, startApp } from '../lib/app-server';
import { cpuSeconds, postgresCpu } from '../lib/cpu';

const { values } = parseArgs({
  options: { points: { type: 'string', default: '1000000' }, writers: { type: 'string', default: '4' } },
});
const totalPoints = Number(values.points);
const writers = Number(values.writers);

ensureWebBuilt();
const app = await startApp('aft_bench');
const db = new pg.Client({ connectionString: app.databaseUrl });
await db.connect();
try {
  const per = Math.ceil(totalPoints / writers);
  const children = Array.from({ length: writers }, (_, i) =>
    fork(`${ROOT}/tools/bench/ingest-writer.ts`, [app.baseUrl, app.apiKey, String(per), String(i)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  await Promise.all(children.map((c) => new Promise((r) => c.once('message', r))));
  const serverCpu0 = cpuSeconds(app.pid);
  const t0 = performance.now();
  const results = children.map(
    (c) =>
      new Promise<{ runId: string; points: number; ms: number; finishMs: number; cpu: number }>((res, rej) => {
        c.once('message', (m) =>
          res({ ...(m as { runId: string; points: number; ms: number; finishMs: number }), cpu: cpuSeconds(c.pid!) }),
        );
        c.once('exit', (code) => code && rej(new Error(`writer exited ${code}`)));
      }),
  );
  for (const c of children) c.send('go');
  const done = await Promise.all(results);
  const total = (performance.now() - t0) / 1000;
  // ingest: until the last writer's last batch was acknowledged (the writers start together); ending the runs, which
  // folds each run's points into chunks, is reported apart
  const wall = Math.max(...done.map((r) => r.ms)) / 1000;
  const serverCpu = cpuSeconds(app.pid) - serverCpu0;
  const pgCpu = await postgresCpu(db);
  // chunks and tail (docs/architecture.md, "The metric store"): a point counts once wherever it lives
  const counted = await countStoredPoints(db, null);
  const stored = { rows: [{ n: String(counted.n), d: String(counted.distinct) }] };
  const sent = done.reduce((a, r) => a + r.points, 0);
  const out = {
    bench: 'ingest',
    writers,
    points: sent,
    seconds: Number(wall.toFixed(2)),
    pointsPerSecond: Math.round(sent / wall),
    target: 100_000,
    stored: Number(stored.rows[0]!.n),
    duplicates: Number(stored.rows[0]!.n) - Number(stored.rows[0]!.d),
    cpuSeconds: {
      webServer: Number(serverCpu.toFixed(1)),
      postgresBackends: Number(pgCpu.toFixed(1)),
      writers: Number(done.reduce((a, r) => a + r.cpu, 0).toFixed(1)),
      available: Number((total * availableParallelism()).toFixed(1)),
    },
    perWriterSeconds: done.map((r) => Number((r.ms / 1000).toFixed(2))),
    runEndSeconds: Number((Math.max(...done.map((r) => r.finishMs)) / 1000).toFixed(2)),
    totalSeconds: Number(total.toFixed(2)),
  };
  console.log(JSON.stringify(out, null, 2));
  if (out.stored !== sent || out.duplicates !== 0) process.exitCode = 1;
} finally {
  await db.end();
  await app.stop();
}
