/** One SDK writer of the ingest benchmark: logs `points` points (KEYS keys per step) and reports its timing. */
import { init } from '@aft/tracker';

const [url, apiKey, pointsArg, idx] = process.argv.slice(2);
const total = Number(pointsArg);
const KEYS = ['loss', 'grad_norm', 'lr', 'acc', 'ppl'];
const run = await init({
  url: url!,
  apiKey: apiKey!,
  project: 'bench-ingest',
  name: `writer-${idx}`,
  maxInFlight: 2,
  finishOnExit: false,
});
process.send?.({ ready: true });
await new Promise<void>((r) => process.once('message', () => r()));
const t0 = performance.now();
const steps = Math.ceil(total / KEYS.length);
const m: Record<string, number> = {};
for (let step = 0; step < steps; step++) {
  for (let k = 0; k < KEYS.length; k++) m[KEYS[k]!] = Math.sin(step * (k + 1) * 1e-3) + (step % 997 === 0 ? 50 : 0);
  const p = run.log(m, step);
  if ((step & 1023) === 0) await p; // honour backpressure
}
await run.flush();
const ms = performance.now() - t0;
// ending the run folds its points into chunks (docs/architecture.md, "The metric store"): timed apart from ingest
await run.finish();
const finishMs = performance.now() - t0 - ms;
process.send?.({ runId: run.id, points: steps * KEYS.length, ms, finishMs });
