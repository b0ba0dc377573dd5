/**
 * Logs a run through the SDK the way a training script would: a noisy, decaying loss with one spike, an accuracy
 * curve, a few samples, a checkpoint artifact and a summary.
 *
 *   AFT_API_KEY=$(cat .demo/api-key) npx tsx tools/examples/log-run.ts --steps 2000 --delay-ms 5
 *
 * Prints the run's id and URL as JSON on the first line, so a test can open the page while it still logs.
 */
import { parseArgs } from 'node:util';
import { init } from '@aft/tracker';

const { values } = parseArgs({
  options: {
    project: { type: 'string', default: 'examples' },
    name: { type: 'string' },
    steps: { type: 'string', default: '2000' },
    'delay-ms': { type: 'string', default: '0' },
    'log-every': { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
  },
});
const steps = Number(values.steps);
const delay = Number(values['delay-ms']);
const every = Number(values['log-every']);
let s = Number(values.seed) || 1;
const rand = () => ((s = (s * 16807) % 2147483647) - 1) / 2147483646;

const run = await init({
  project: values.project!,
  name: values.name,
  method: 'vft',
  config: { lr: 3e-3, batchSize: 32, model: { preset: 'tiny', dModel: 128, layers: 2 }, steps },
  tags: ['example'],
  flushIntervalMs: 250,
});
console.log(JSON.stringify({ id: run.id, url: run.url }));

for (let step = 0; step < steps; step++) {
  const loss =
    2.5 * Math.exp(-step / (steps / 4)) + 0.3 + 0.05 * (rand() - 0.5) + (step === Math.floor(steps * 0.6) ? 3 : 0);
  if (step % every === 0) await run.log({ 'train/loss': loss, 'train/lr': 3e-3 * Math.min(1, step / 100) }, step);
  if (step % 100 === 0) await run.log({ 'eval/accuracy': Math.min(0.65, step / steps) + 0.02 * rand() }, step);
  if (delay) await new Promise((r) => setTimeout(r, delay));
}
run.logSamples([
  {
    step: steps,
    questionId: 'arith-1',
    prompt: 'Tom has 3 apples and buys 4 more. How many?',
    completion: '3+4=7\n#### 7',
    gold: '7',
    extractedAnswer: '7',
    correct: true,
    score: -0.21,
  },
  {
    step: steps,
    questionId: 'arith-1',
    sampleIdx: 1,
    prompt: 'Tom has 3 apples and buys 4 more. How many?',
    completion: '3*4=12\n#### 12',
    gold: '7',
    extractedAnswer: '12',
    correct: false,
    score: -0.93,
  },
]);
await run.logArtifact({
  kind: 'checkpoint',
  name: `step-${steps}`,
  uri: `file:///tmp/aft-example/${run.id}/step-${steps}.ckpt`,
  step: steps,
  bytes: 1_664_512,
});
await run.setSummary({ 'eval/accuracy': 0.63, 'train/loss': 0.31 });
await run.finish();
