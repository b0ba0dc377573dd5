/** One SDK writer of `bench:scale`: logs every step of its runs (KEYS keys each, realistic curves), run after run. */
import { init } from '@aft/tracker';
import { curve, type CurveKind } from '@aft/db/testing';

const [url, apiKey, runsArg, stepsArg, idx] = process.argv.slice(2);
const KEYS: [string, CurveKind][] = [
  ['loss', 'loss'],
  ['val_loss', 'loss'],
  ['acc', 'accuracy'],
  ['val_acc', 'accuracy'],
  ['lr', 'lr'],
  ['grad_norm', 'grad-norm'],
  ['ppl', 'loss'],
  ['reward', 'loss'],
  ['kl', 'grad-norm'],
  ['done', 'constant'],
];
const runs = Number(runsArg);
const steps = Number(stepsArg);
process.send?.({ ready: true });
await new Promise<void>((r) => process.once('message', () => r()));
const t0 = performance.now();
let points = 0;
for (let r = 0; r < runs; r++) {
  const seed = Number(idx) * 100_000 + r;
  const cols = KEYS.map(
    ([, kind], k) => curve(kind, { seed: seed * 16 + k, from: 0, count: steps, nanRate: 1e-4, spikeRate: 1e-4 }).values,
  );
  const run = await init({
    url: url!,
    apiKey: apiKey!,
    project: 'bench-scale',
    name: `w${idx}-r${r}`,
    maxInFlight: 2,
    finishOnExit: false,
  });
  const m: Record<string, number> = {};
  for (let step = 0; step < steps; step++) {
    for (let k = 0; k < KEYS.length; k++) m[KEYS[k]![0]] = cols[k]![step]!;
    const p = run.log(m, step);
    if ((step & 1023) === 0) await p; // honour backpressure
  }
  await run.flush();
  await run.finish();
  points += steps * KEYS.length;
}
process.send?.({ points, ms: performance.now() - t0 });
