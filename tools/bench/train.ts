/**
 * `npm run bench:train`: training throughput of the GPT on this machine's backend, for the `tiny` and `small`
 * presets. Prints JSON: tokens/s, the model's achieved GFLOP/s (analytic FLOPs of forward + backward), the
 * plain 512³ matMul GFLOP/s measured in the same process, their ratio, the same steps on tfjs-wasm's own kernels
 * (`tfjsOnly`), matMul rates of the step's shapes, and where a step's time goes (kernels).
 * Measured in 3 rounds of (matMul reference, BENCH_STEPS training steps, default 8); BENCH_PRESETS (default
 * tiny,small) narrows it.
 */
import * as tf from '@tensorflow/tfjs';
import {
  batchMatMul,
  initBackend,
  nllLoss,
  resolveVftConfig,
  setWasmKernelsEnabled,
  trainLoop,
  usingWasmKernels,
  VftSession,
  type GPTConfig,
} from '@aft/aft-core';

const STEPS = Number(process.env['BENCH_STEPS'] ?? 8);
const ROUNDS = 3;
const PRESETS = (process.env['BENCH_PRESETS'] ?? 'tiny,small').split(',') as ('tiny' | 'small')[];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * tf.matMul's rate on 512×512 operands (XNNPACK on wasm, packed right operand cached): the best of 3 rounds of 10,
 * since other processes on the machine only ever slow it down.
 */
async function matmulGflops(): Promise<number> {
  const a = tf.randomNormal([512, 512]) as tf.Tensor2D;
  const b = tf.randomNormal([512, 512]) as tf.Tensor2D;
  for (let i = 0; i < 3; i++) tf.matMul(a, b).dispose();
  let best = 0;
  for (let round = 0; round < 3; round++) {
    const n = 10;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const c = tf.matMul(a, b);
      await c.data();
      c.dispose();
    }
    best = Math.max(best, (2 * 512 ** 3) / ((performance.now() - t0) / n) / 1e6);
  }
  a.dispose();
  b.dispose();
  return best;
}

/**
 * GFLOP/s of one matMul shape with fresh operands every call, as in training (activations change every step;
 * the wasm backend's XNNPACK path packs the right operand anew each time).
 */
async function shapeGflops(a: number[], b: number[], ours: boolean): Promise<number> {
  const flops = 2 * a.slice(0, -1).reduce((x, y) => x * y, 1) * a[a.length - 1]! * b[b.length - 1]!;
  let ms = 0;
  for (let i = 0; i < 8; i++) {
    const [x, y] = [tf.randomNormal(a as [number, number, number]), tf.randomNormal(b as [number, number, number])] as [
      tf.Tensor3D,
      tf.Tensor3D,
    ];
    await Promise.all([x.data(), y.data()]);
    const t0 = performance.now();
    const c = ours ? batchMatMul(x, y) : tf.matMul(x, y);
    await c.data();
    if (i >= 2) ms += performance.now() - t0;
    tf.dispose([x, y, c]);
  }
  return flops / (ms / 6) / 1e6;
}

/** Training FLOPs for one sequence of T tokens: 3 × forward (backward ≈ 2 × forward). */
function trainFlops(c: GPTConfig, T: number): number {
  const D = c.dModel;
  const perTokenMatmul = 2 * (c.nLayer * 12 * D * D + 2 * c.vocabSize * D); // blocks + embedding + tied output
  // QKᵀ and PV over the causal half only, T(T+1)/2 query-key pairs: the useful work (our attention kernels skip the
  // masked blocks; tfjs's composite computes all T×T and is credited the same). Counting the full T×T, as MFU
  // estimates often do, would add ~8% (tiny) and ~6% (small) to every GFLOP/s here.
  const attention = c.nLayer * 2 * 2 * ((T * (T + 1)) / 2) * D;
  return 3 * (perTokenMatmul * T + attention);
}

/**
 * Trains `steps` steps (after 2 warm-up steps) and counts the tokens and FLOPs of exactly the batches it trained.
 * Besides the totals, the median of the steps' own GFLOP/s: other processes on a shared machine stall single steps,
 * and the median is what a step does when not stalled (the matMul reference is likewise the best of rounds).
 */
async function trainRate(s: VftSession, steps: number) {
  const stepFlops: number[] = [];
  const stepMs: number[] = [];
  let [batches, seqTokens, tokens] = [0, 0, 0];
  const first = s.step;
  await trainLoop({
    model: s.model,
    optimizer: s.optimizer,
    rng: s.rng,
    startStep: first,
    endStep: first + steps + 2,
    accumulate: 1,
    nextBatch: (rng) => {
      const b = s.nextBatch(rng);
      if (batches++ >= 2) {
        seqTokens += b.B * b.T;
        stepFlops.push(b.B * trainFlops(s.model.config, b.T));
        tokens += b.weight.reduce((a, w) => a + w, 0);
      }
      return b;
    },
    loss: (m, b) => ({ loss: nllLoss(m, b) }),
    onStep: (info) => {
      if (info.step - first >= 2) stepMs.push(info.ms); // warm-up steps compile kernels
    },
  });
  s.step = first + steps + 2;
  const seconds = stepMs.reduce((a, x) => a + x, 0) / 1000;
  const flops = stepFlops.reduce((a, x) => a + x, 0);
  const rates = stepFlops.map((f, i) => f / stepMs[i]! / 1e6);
  return { seconds, seqTokens, tokens, gflops: flops / seconds / 1e9, medianStepGflops: median(rates) };
}

const results = [];
const backend = await initBackend();
for (const preset of PRESETS) {
  const s = new VftSession(resolveVftConfig(preset, { steps: (ROUNDS + 1) * (STEPS + 2) }));
  const next = s.nextBatch;
  // rounds of (matMul reference, STEPS training steps): each ratio pairs measurements taken moments apart
  const rounds: { mm: number; run: Awaited<ReturnType<typeof trainRate>>; ratio: number }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const mm = await matmulGflops();
    const run = await trainRate(s, STEPS);
    rounds.push({ mm, run, ratio: run.medianStepGflops / mm });
  }
  const sum = (f: (x: (typeof rounds)[number]) => number) => rounds.reduce((a, x) => a + f(x), 0);
  const run = {
    seconds: sum((x) => x.run.seconds),
    seqTokens: sum((x) => x.run.seqTokens),
    tokens: sum((x) => x.run.tokens),
    gflops: sum((x) => x.run.gflops * x.run.seconds) / sum((x) => x.run.seconds),
  };
  // the same model and data with tfjs's own kernels only (AFT_WASM_KERNELS=off), for comparison
  let tfjsOnly: { tokensPerSecond: number; achievedGflops: number; medianStepGflops: number } | null = null;
  if (usingWasmKernels()) {
    setWasmKernelsEnabled(false);
    const r = await trainRate(s, Math.max(3, Math.ceil(STEPS / 3)));
    setWasmKernelsEnabled(true);
    tfjsOnly = {
      tokensPerSecond: Math.round(r.seqTokens / r.seconds),
      achievedGflops: Number(r.gflops.toFixed(2)),
      medianStepGflops: Number(r.medianStepGflops.toFixed(2)),
    };
  }
  const rng = s.rng.fork();
  // where the time goes: kernels of one step
  const b = next(rng);
  const vars = [...s.model.params.values()];
  const prof = await tf.profile(() => {
    const { value, grads } = tf.variableGrads(() => nllLoss(s.model, b), vars);
    value.dataSync();
    Object.values(grads).forEach((g) => g.dispose());
    value.dispose();
  });
  const byKernel = new Map<string, number>();
  for (const k of prof.kernels) {
    // "forward" is the wrapper tfjs records around a custom-gradient op; its kernels are listed on their own
    if (k.name === 'forward') continue;
    const key =
      k.name === 'BatchMatMul'
        ? `BatchMatMul ${(k.inputShapes[0] as number[]).length === 3 ? '(batched, attention)' : '(2-D)'}`
        : k.name;
    byKernel.set(key, (byKernel.get(key) ?? 0) + (k.kernelTimeMs as number));
  }
  const total = [...byKernel.values()].reduce((a, x) => a + x, 0);
  // the two kinds of matMul of this step's shapes, alone: the model's 2-D projections and attention's batched ones
  const { dModel: D, nHead: H } = s.model.config;
  const rates = async (a: number[], x: number[]) => {
    const r = { tfjs: await shapeGflops(a, x, false), ours: usingWasmKernels() ? await shapeGflops(a, x, true) : null };
    return { tfjs: Number(r.tfjs.toFixed(2)), ours: r.ours && Number(r.ours.toFixed(2)) };
  };
  const shapes = {
    mlp2d: await rates([1, b.B * b.T, D], [1, D, 4 * D]),
    attentionBatched: await rates([b.B * H, b.T, D / H], [b.B * H, D / H, b.T]),
    matmul512: await rates([1, 512, 512], [1, 512, 512]),
  };
  const mm = median(rounds.map((x) => x.mm));
  results.push({
    preset,
    params: s.model.numParams,
    config: s.model.config,
    steps: ROUNDS * STEPS,
    secondsPerStep: Number((run.seconds / (ROUNDS * STEPS)).toFixed(3)),
    tokensPerSecond: Math.round(run.seqTokens / run.seconds),
    responseTokensPerSecond: Math.round(run.tokens / run.seconds),
    /** FLOPs of all measured steps over their total time. */
    achievedGflops: Number(run.gflops.toFixed(2)),
    /** Median over rounds of the 512³ matMul rate. */
    matmulGflops: Number(mm.toFixed(2)),
    /** Median over rounds of (median step GFLOP/s) / (matMul GFLOP/s of the same round). */
    ratio: Number(median(rounds.map((x) => x.ratio)).toFixed(3)),
    /** achievedGflops / matmulGflops: counts stalled steps too. */
    ratioOfTotals: Number((run.gflops / mm).toFixed(3)),
    target: 0.5,
    rounds: rounds.map((x) => ({
      matmulGflops: Number(x.mm.toFixed(2)),
      medianStepGflops: Number(x.run.medianStepGflops.toFixed(2)),
      ratio: Number(x.ratio.toFixed(3)),
    })),
    /** The same steps on tfjs-wasm's own kernels (our SIMD matMul and buffer sharing off). */
    tfjsOnly: tfjsOnly && { ...tfjsOnly, ratio: Number((tfjsOnly.medianStepGflops / mm).toFixed(3)) },
    /** GFLOP/s of this step's matMul shapes alone with fresh operands, tf.matMul and our SIMD kernel. */
    shapeGflops: shapes,
    profile: [...byKernel]
      .sort((a, x) => x[1] - a[1])
      .slice(0, 8)
      .map(([k, t]) => ({ kernel: k, share: Number((t / total).toFixed(3)) })),
  });
  s.dispose();
}
console.log(JSON.stringify({ bench: 'train', backend: backend.name, kernels: backend.kernels, results }, null, 2));
