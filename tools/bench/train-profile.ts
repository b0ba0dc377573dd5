/**
 * Where one training step's time goes, for `npm run bench:train`: tf.profile of the forward + backward pass and of
 * AdamW's update, by kernel and by the composites issue 18 names (attention from qkv, log-softmax gathered at the
 * targets, AdamW's update chain), the rest being the 2-D matMuls and everything else (LayerNorm, GELU, biases,
 * residual adds, the embedding).
 *
 * What a kernel's milliseconds are depends on the backend: on wasm and cpu, the wall time of the kernel's call
 * (they compute synchronously); on webgpu, the GPU time between timestamp queries written at the start and end of
 * each of the kernel's compute passes (tfjs-backend-webgpu's `time()`, used by tf.profile when the device has the
 * `timestamp-query` feature: Dawn offers it in Node, lavapipe included). In profiling mode tfjs-webgpu gives every
 * program a pass of its own and submits it alone, so the step runs slower than when trained; the kernel times
 * exclude that and the CPU's encoding work, so a step's wall time less their sum is overhead, not GPU work. Dawn
 * rounds timestamps down to 65.536 µs unless its `timestamp_quantization` toggle is off (`create(['disable-dawn-
 * features=timestamp_quantization'])`, measured here): a kernel shorter than that reads 0 or 65.5 µs, and only sums
 * over many kernels are right — enough on lavapipe (kernels of milliseconds), coarse on a GPU.
 */
import * as tf from '@tensorflow/tfjs';
import { lrAt, nllLoss, type TokenBatch, type VftSession } from '@aft/aft-core';

export const COMPOSITES = ['attention', 'logSoftmaxAtTargets', 'adamw', 'matmul', 'other'] as const;
export type Composite = (typeof COMPOSITES)[number];

interface Dims {
  B: number;
  T: number;
  H: number;
  hd: number;
  D: number;
  V: number;
}

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * The composite a forward/backward kernel belongs to, by name (our fused kernels) or by the shapes it touches: the
 * attention's heads [B·H, T, hd], [B, T, H, hd], [B, H, T, hd], its scores [B·H, T, T] and mask [T, T], and the
 * split of qkv [B·T, 3D] (Concat is its gradient); the logits [B·T, V] outside matMuls (the input embedding's one-hot
 * has that shape too: one OneHot and one Cast, counted here).
 */
export function compositeOf(name: string, shapes: number[][], d: Dims): Composite {
  if (/^AftAttention|^AftCausalSoftmax/.test(name)) return 'attention';
  if (name.startsWith('AftTokenLogProbs')) return 'logSoftmaxAtTargets';
  const heads = [
    [d.B * d.H, d.T, d.hd],
    [d.B, d.T, d.H, d.hd],
    [d.B, d.H, d.T, d.hd],
    [d.B * d.H, d.T, d.T],
  ];
  const attention = shapes.some((s) => heads.some((h) => same(s, h)));
  if (name === 'BatchMatMul' || name === 'AftBatchMatMul' || name === '_FusedMatMul') {
    return attention ? 'attention' : 'matmul';
  }
  if (attention || shapes.some((s) => same(s, [d.T, d.T]))) return 'attention';
  if ((name === 'SplitV' || name === 'Concat') && shapes.some((s) => same(s, [d.B * d.T, 3 * d.D]))) return 'attention';
  if (shapes.some((s) => same(s, [d.B * d.T, d.V]))) return 'logSoftmaxAtTargets';
  return 'other';
}

interface KernelRecord {
  name: string;
  kernelTimeMs: number | { error: string };
  /** webgpu: "Program: ms, …", one entry per program the kernel dispatched. */
  extraInfo?: string;
  inputShapes: number[][];
  outputShapes: number[][];
}

export interface StepProfile {
  /** How the kernel times were taken (see the header). */
  timing: string;
  /** Steps profiled; every number is the median over them. */
  steps: number;
  /** Sum of the composites' kernel times: forward + backward, and AdamW's update (with the gradient norm). */
  kernelMs: number;
  /** Wall time of the profiled step: more than a trained step's (see the header). */
  profiledWallMs: number;
  /** Kernels dispatched in the step. */
  kernelCalls: number;
  /** webgpu: compute dispatches in the step (a kernel may run several programs, ours 2 or 3; Reshape none). */
  dispatches?: number;
  /** By kernel name, largest first. */
  kernels: { kernel: string; ms: number; calls: number; share: number }[];
  /** By composite (see compositeOf). */
  composites: Record<Composite, { ms: number; calls: number; share: number }>;
}

const msOf = (k: KernelRecord) => (typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0);

/** How tf.profile times kernels on the active backend. */
function timing(): string {
  if (tf.getBackend() !== 'webgpu') return 'wall time of each kernel call (the backend computes synchronously)';
  const be = tf.backend() as unknown as { supportTimestampQuery?: boolean };
  return be.supportTimestampQuery
    ? 'GPU time per kernel from timestamp queries around its compute passes (one pass per program when profiling)'
    : 'unavailable: the device lacks timestamp-query, so tfjs-webgpu reports 0 for every kernel';
}

interface Tally {
  ms: number;
  calls: number;
}

/** One profiled step on `batch` (its gradients, then AdamW's update of the session's model), tallied. */
async function profileOnce(s: VftSession, batch: TokenBatch) {
  const vars = [...s.model.params.values()];
  const nameOf = new Map([...s.model.params].map(([n, v]) => [v.name, n]));
  const { dModel: D, nHead: H, vocabSize: V } = s.model.config;
  const dims: Dims = { B: batch.B, T: batch.T, H, hd: D / H, D, V };
  const t0 = performance.now();
  let named: Record<string, tf.Tensor> = {};
  // tf.profile returns the engine's one profile object each time: its kernels are copied out before the next call
  const fwd = [
    ...(
      await tf.profile(async () => {
        const { value, grads } = tf.variableGrads(() => nllLoss(s.model, batch), vars);
        await value.data(); // asynchronous: tfjs-webgpu cannot read synchronously in Node
        value.dispose();
        named = Object.fromEntries(Object.entries(grads).map(([k, g]) => [nameOf.get(k) ?? k, g]));
      })
    ).kernels,
  ] as unknown as KernelRecord[];
  const opt = [
    ...(
      await tf.profile(async () => {
        await s.optimizer.apply(named, lrAt(s.step, s.optimizer.config));
      })
    ).kernels,
  ] as unknown as KernelRecord[];
  tf.dispose(Object.values(named));
  await tf.zeros([1]).data(); // the update's last kernels done
  const wallMs = performance.now() - t0;

  const kernels = new Map<string, Tally>();
  const composites = new Map<Composite, Tally>(COMPOSITES.map((c) => [c, { ms: 0, calls: 0 }]));
  const add = (k: KernelRecord, c: Composite) => {
    // "forward" is the wrapper tfjs records around a custom-gradient op; its kernels are listed on their own
    if (k.name === 'forward') return;
    const e = kernels.get(k.name) ?? { ms: 0, calls: 0 };
    kernels.set(k.name, { ms: e.ms + msOf(k), calls: e.calls + 1 });
    const t = composites.get(c)!;
    composites.set(c, { ms: t.ms + msOf(k), calls: t.calls + 1 });
  };
  for (const k of fwd) add(k, compositeOf(k.name, [...k.inputShapes, ...k.outputShapes].filter(Boolean), dims));
  for (const k of opt) add(k, 'adamw');
  const dispatches = [...fwd, ...opt]
    .filter((k) => k.name !== 'forward') // its timer holds its kernels' programs again
    .reduce((a, k) => a + (k.extraInfo ? k.extraInfo.split(', ').length : 0), 0);
  return { kernels, composites, wallMs, dispatches };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * Profiles a training step on each of `batches` (the model trains on them) and reports, per kernel and per
 * composite, the median over the steps: a process elsewhere on the machine stalls one kernel of one step, not the
 * same kernel of every step.
 */
export async function profileStep(s: VftSession, batches: TokenBatch[]): Promise<StepProfile> {
  const runs: Awaited<ReturnType<typeof profileOnce>>[] = [];
  for (const b of batches) runs.push(await profileOnce(s, b));
  const med = (f: (r: (typeof runs)[number]) => Tally | undefined): Tally => ({
    ms: median(runs.map((r) => f(r)?.ms ?? 0)),
    calls: median(runs.map((r) => f(r)?.calls ?? 0)),
  });
  const names = new Set(runs.flatMap((r) => [...r.kernels.keys()]));
  const kernels = [...names].map((k) => [k, med((r) => r.kernels.get(k))] as const);
  const composites = COMPOSITES.map((c) => [c, med((r) => r.composites.get(c))] as const);
  const total = composites.reduce((a, [, t]) => a + t.ms, 0);
  const share = (ms: number) => Number((ms / (total || 1)).toFixed(3));
  const fmt = (t: Tally) => ({ ms: Number(t.ms.toFixed(2)), calls: t.calls, share: share(t.ms) });
  return {
    timing: timing(),
    steps: batches.length,
    kernelMs: Number(total.toFixed(1)),
    profiledWallMs: Math.round(median(runs.map((r) => r.wallMs))),
    kernelCalls: composites.reduce((a, [, t]) => a + t.calls, 0),
    ...(tf.getBackend() === 'webgpu' && { dispatches: median(runs.map((r) => r.dispatches)) }),
    kernels: kernels.sort((a, x) => x[1].ms - a[1].ms).map(([kernel, t]) => ({ kernel, ...fmt(t) })),
    composites: Object.fromEntries(composites.map(([c, t]) => [c, fmt(t)])) as StepProfile['composites'],
  };
}
