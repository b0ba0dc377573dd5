/**
 * The training loop. It knows nothing about the app (minGPT's trainer): it takes a model, an optimizer, a
 * batch source, a loss, an `onStep` callback and an AbortSignal. Gradients are accumulated over micro-batches,
 * clipped and applied by AdamW at the scheduled learning rate. Every tensor it makes is disposed each step.
 */
import * as tf from '@tensorflow/tfjs';
import type { TokenBatch } from '../data/batch';
import type { GPT } from '../model/gpt';
import type { Rng } from '../rng';
import { lrAt, type AdamW } from './optim';

export class NonFiniteLossError extends Error {
  constructor(
    readonly step: number,
    readonly value: number,
  ) {
    super(`loss is ${value} at step ${step}: training diverged`);
  }
}

export interface StepInfo {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Tokens in this step's batches (padding excluded). */
  tokens: number;
  ms: number;
  /** Extra scalars the loss reports (e.g. each loss term). */
  metrics: Record<string, number>;
}

export interface LossResult {
  loss: tf.Scalar;
  metrics?: Record<string, tf.Scalar>;
}

export interface LoopOptions {
  model: GPT;
  optimizer: AdamW;
  rng: Rng;
  /** First step to run (a resumed run starts where its checkpoint left off). */
  startStep: number;
  /** Run until this step (exclusive). */
  endStep: number;
  accumulate: number;
  nextBatch: (rng: Rng) => TokenBatch;
  loss: (model: GPT, batch: TokenBatch) => LossResult;
  onStep?: (s: StepInfo) => void | Promise<void>;
  /** Called after steps that are multiples of `every` (and after the last step). */
  hooks?: { every: number; run: (step: number) => Promise<void> }[];
  signal?: AbortSignal;
}

export interface LoopResult {
  lastStep: number;
  aborted: boolean;
}

export async function trainLoop(o: LoopOptions): Promise<LoopResult> {
  const vars = [...o.model.params.values()];
  const nameOf = new Map([...o.model.params].map(([n, v]) => [v.name, n]));
  let step = o.startStep;
  for (; step < o.endStep; step++) {
    if (o.signal?.aborted) return { lastStep: step, aborted: true };
    const t0 = performance.now();
    const lr = lrAt(step, o.optimizer.config);
    let acc: Record<string, tf.Tensor> | null = null;
    let lossSum = 0;
    let tokens = 0;
    const metricSums: Record<string, number> = {};
    for (let micro = 0; micro < o.accumulate; micro++) {
      const batch = o.nextBatch(o.rng);
      tokens += batch.weight.reduce((a, b) => a + b, 0);
      let extra: Record<string, tf.Scalar> = {};
      const { value, grads } = tf.variableGrads(() => {
        const r = o.loss(o.model, batch);
        extra = Object.fromEntries(Object.entries(r.metrics ?? {}).map(([k, v]) => [k, tf.keep(v)]));
        return r.loss;
      }, vars);
      lossSum += (await value.data())[0]!;
      value.dispose();
      for (const [k, v] of Object.entries(extra)) {
        metricSums[k] = (metricSums[k] ?? 0) + (await v.data())[0]!;
        v.dispose();
      }
      if (!acc) acc = grads;
      else {
        const prev: Record<string, tf.Tensor> = acc;
        acc = Object.fromEntries(Object.keys(prev).map((k) => [k, tf.add(prev[k]!, grads[k]!)]));
        for (const t of [...Object.values(prev), ...Object.values(grads)]) t.dispose();
      }
    }
    const named: Record<string, tf.Tensor> = {};
    for (const [k, g] of Object.entries(acc!)) {
      named[nameOf.get(k) ?? k] = o.accumulate > 1 ? tf.div(g, o.accumulate) : g;
      if (o.accumulate > 1) g.dispose();
    }
    const loss = lossSum / o.accumulate;
    if (!Number.isFinite(loss)) {
      for (const g of Object.values(named)) g.dispose();
      throw new NonFiniteLossError(step, loss);
    }
    const gradNorm = await o.optimizer.apply(named, lr);
    for (const g of Object.values(named)) g.dispose();
    const metrics = Object.fromEntries(Object.entries(metricSums).map(([k, v]) => [k, v / o.accumulate]));
    await o.onStep?.({ step, loss, lr, gradNorm, tokens, ms: performance.now() - t0, metrics });
    const done = step + 1;
    for (const h of o.hooks ?? []) if (done % h.every === 0 || done === o.endStep) await h.run(done);
  }
  return { lastStep: step, aborted: false };
}
