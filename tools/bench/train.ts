/**
 * `npm run bench:train [-- --backend webgpu --presets tiny,small --steps 8 --rounds 3]`: training throughput of the
 * GPT on one backend. Prints JSON per preset: tokens/s, the model's achieved GFLOP/s (analytic FLOPs of forward +
 * backward), the same-device matMul rate measured in the same process (matmulGflops, of a matmulSize² square), their
 * ratio, on wasm the same steps on tfjs-wasm's own kernels (`tfjsOnly`), matMul rates of the step's shapes, and
 * where a step's time goes by kernel and by composite (train-profile.ts says what the milliseconds are).
 *
 * Measured in rounds of (matMul reference, STEPS training steps). Flags, or the environment where a flag is left
 * out: --backend (AFT_BACKEND; initBackend's choice otherwise), --presets (BENCH_PRESETS, default tiny,small),
 * --steps (BENCH_STEPS, 8), --rounds (BENCH_ROUNDS, 3), --batch-size (the preset's), --matmul-size (512 on wasm, cpu
 * and a software adapter; 2048 on a GPU). The machine's load average is printed with the numbers: other processes
 * slow every one of them.
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import {
  batchMatMul,
  initBackend,
  installWebGpuKernels,
  nllLoss,
  PRESETS,
  resolveVftConfig,
  setWasmKernelsEnabled,
  setWebGpuKernelsEnabled,
  trainLoop,
  usingWasmKernels,
  usingWebGpuKernels,
  VftSession,
  type GPTConfig,
  type PresetName,
} from '@aft/aft-core';
import { profileStep } from './train-profile';

const { values: flags } = parseArgs({
  options: {
    backend: { type: 'string' },
    presets: { type: 'string' },
    steps: { type: 'string' },
    rounds: { type: 'string' },
    'batch-size': { type: 'string' },
    'matmul-size': { type: 'string' },
  },
});

function positiveInt(name: string, raw: string | undefined, fallback: number | undefined): number | undefined {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${raw}"`);
  return n;
}

const STEPS = positiveInt('steps', flags.steps ?? process.env['BENCH_STEPS'], 8)!;
const ROUNDS = positiveInt('rounds', flags.rounds ?? process.env['BENCH_ROUNDS'], 3)!;
const BATCH = positiveInt('batch-size', flags['batch-size'], undefined);
const PRESET_LIST = (flags.presets ?? process.env['BENCH_PRESETS'] ?? 'tiny,small').split(',') as PresetName[];
for (const p of PRESET_LIST) {
  if (!PRESETS.includes(p)) throw new Error(`--presets: unknown preset "${p}"; choose from ${PRESETS.join(', ')}`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * tf.matMul's rate on n×n operands: the best of 3 rounds, since other processes on the machine only ever slow it
 * down. A round queues k products and awaits the last one's data() (a GPU runs them back to back; wasm computes each
 * on the call), k sized from a first timed call so that a round takes about `roundMs`.
 */
async function matmulGflops(n: number, roundMs: number): Promise<number> {
  const a = tf.randomNormal([n, n]) as tf.Tensor2D;
  const b = tf.randomNormal([n, n]) as tf.Tensor2D;
  const once = async () => {
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
  };
  await once(); // compiles the program
  let t0 = performance.now();
  await once();
  const k = Math.max(1, Math.min(50, Math.round(roundMs / (performance.now() - t0))));
  let best = 0;
  for (let round = 0; round < 3; round++) {
    t0 = performance.now();
    const cs = Array.from({ length: k }, () => tf.matMul(a, b));
    await cs[k - 1]!.data();
    best = Math.max(best, (k * 2 * n ** 3) / (performance.now() - t0) / 1e6);
    tf.dispose(cs);
  }
  tf.dispose([a, b]);
  return best;
}

type Shape3 = [number, number, number];

/**
 * GFLOP/s of one matMul shape with fresh operands every call, as in training (activations change every step;
 * the wasm backend's XNNPACK path packs the right operand anew each time). At least 3 timed calls, more up to 6
 * while they take under a second in all.
 */
async function shapeGflops(a: Shape3, b: Shape3, ours: boolean): Promise<number> {
  const flops = 2 * a.slice(0, -1).reduce((x, y) => x * y, 1) * a[a.length - 1]! * b[b.length - 1]!;
  const times: number[] = [];
  for (let i = 0; i < 8 && (times.length < 3 || (times.length < 6 && times.reduce((s, x) => s + x, 0) < 1000)); i++) {
    const [x, y] = [tf.randomNormal(a), tf.randomNormal(b)] as [tf.Tensor3D, tf.Tensor3D];
    await Promise.all([x.data(), y.data()]);
    const t0 = performance.now();
    const c = ours ? batchMatMul(x, y) : tf.matMul(x, y);
    await c.data();
    if (i >= 2) times.push(performance.now() - t0); // the first two compile and warm up
    tf.dispose([x, y, c]);
  }
  return flops / median(times) / 1e6;
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
 * Trains `steps` steps after `warmup` more and counts the tokens and FLOPs of exactly the batches it measured (the
 * first steps compile kernels, and a step after a switch of kernels waits for the work the previous one queued).
 * Besides the totals, the median of the steps' own GFLOP/s: other processes on a shared machine stall single steps,
 * and the median is what a step does when not stalled (the matMul reference is likewise the best of rounds).
 */
async function trainRate(s: VftSession, steps: number, warmup: number) {
  const stepFlops: number[] = [];
  const stepMs: number[] = [];
  let [batches, seqTokens, tokens] = [0, 0, 0];
  const first = s.step;
  await trainLoop({
    model: s.model,
    optimizer: s.optimizer,
    rng: s.rng,
    startStep: first,
    endStep: first + steps + warmup,
    accumulate: 1,
    nextBatch: (rng) => {
      const b = s.nextBatch(rng);
      if (batches++ >= warmup) {
        seqTokens += b.B * b.T;
        stepFlops.push(b.B * trainFlops(s.model.config, b.T));
        tokens += b.weight.reduce((a, w) => a + w, 0);
      }
      return b;
    },
    loss: (m, b) => ({ loss: nllLoss(m, b) }),
    onStep: (info) => {
      if (info.step - first >= warmup) stepMs.push(info.ms);
    },
  });
  s.step = first + steps + warmup;
  const seconds = stepMs.reduce((a, x) => a + x, 0) / 1000;
  const flops = stepFlops.reduce((a, x) => a + x, 0);
  const rates = stepFlops.map((f, i) => f / stepMs[i]! / 1e6);
  if (!steps) return { seconds, seqTokens, tokens, gflops: 0, medianStepGflops: 0 }; // warm-up only
  return { seconds, seqTokens, tokens, gflops: flops / seconds / 1e9, medianStepGflops: median(rates) };
}

const load = () => loadavg().map((x) => Number(x.toFixed(2)));
const backend = await initBackend(flags.backend ?? process.env['AFT_BACKEND']);
// our WGSL kernels (kernels/webgpu); the model calls them where it checks usingWebGpuKernels()
const gpuKernels = backend.name === 'webgpu' ? installWebGpuKernels() : [];
const onGpu = backend.name === 'webgpu' && backend.adapter?.software === false;
const MM = positiveInt('matmul-size', flags['matmul-size'], onGpu ? 2048 : 512)!;
// a software adapter's products are slow (lavapipe: ~1 GFLOP/s, 512³ in ~0.3 s), so its rounds are kept short
const ROUND_MS = backend.adapter?.software ? 600 : 300;
// profiled steps, whose median is reported: one where a step takes many seconds
const PROFILE_STEPS = backend.adapter?.software ? 1 : 3;
const loadBefore = load();
const results = [];
for (const preset of PRESET_LIST) {
  const overrides: Record<string, unknown> = { steps: (ROUNDS + 1) * (STEPS + 2) };
  if (BATCH) overrides['batchSize'] = BATCH;
  const s = new VftSession(resolveVftConfig(preset, overrides));
  const next = s.nextBatch;
  await trainRate(s, 0, 2); // compiles the kernels
  // where the time goes: the kernels of a step
  const rng = s.rng.fork();
  const b = next(rng);
  const prof = await profileStep(s, [b, ...Array.from({ length: PROFILE_STEPS - 1 }, () => next(rng))]);
  // where the profile shows the model ran our kernels: the same model and data on tfjs's own (AFT_WASM_KERNELS=off,
  // AFT_WEBGPU_KERNELS=off) for comparison, a third as many steps after each round's own
  const ours = !prof.kernels.some((k) => k.kernel.startsWith('Aft'))
    ? null
    : usingWasmKernels()
      ? setWasmKernelsEnabled
      : usingWebGpuKernels()
        ? setWebGpuKernelsEnabled
        : null;
  // rounds of (matMul reference, STEPS training steps[, steps on tfjs's kernels]): each ratio pairs measurements
  // taken moments apart, and so does the comparison
  type Run = Awaited<ReturnType<typeof trainRate>>;
  const rounds: { mm: number; run: Run; ratio: number; off: Run | null }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const mm = await matmulGflops(MM, ROUND_MS);
    const run = await trainRate(s, STEPS, 1);
    let off: Run | null = null;
    if (ours) {
      ours(false);
      off = await trainRate(s, Math.ceil(STEPS / 3), 1);
      ours(true);
    }
    rounds.push({ mm, run, ratio: run.medianStepGflops / mm, off });
  }
  const total = (runs: Run[]) => {
    const seconds = runs.reduce((a, x) => a + x.seconds, 0);
    return {
      seconds,
      seqTokens: runs.reduce((a, x) => a + x.seqTokens, 0),
      tokens: runs.reduce((a, x) => a + x.tokens, 0),
      gflops: runs.reduce((a, x) => a + x.gflops * x.seconds, 0) / seconds,
      medianStepGflops: median(runs.map((x) => x.medianStepGflops)),
    };
  };
  const run = total(rounds.map((x) => x.run));
  const offRuns = rounds.flatMap((x) => (x.off ? [x.off] : []));
  const off = offRuns.length ? total(offRuns) : null;
  const tfjsOnly = off && {
    tokensPerSecond: Math.round(off.seqTokens / off.seconds),
    achievedGflops: Number(off.gflops.toFixed(2)),
    medianStepGflops: Number(off.medianStepGflops.toFixed(2)),
    /** Median over rounds of (median step GFLOP/s with ours) / (without, the same round). */
    oursSpeedup: Number(median(rounds.map((x) => x.run.medianStepGflops / x.off!.medianStepGflops)).toFixed(2)),
  };
  // the two kinds of matMul of this step's shapes, alone: the model's 2-D projections and attention's batched ones
  const { dModel: D, nHead: H } = s.model.config;
  const rates = async (a: Shape3, x: Shape3) => {
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
    batch: { B: b.B, T: b.T },
    steps: ROUNDS * STEPS,
    secondsPerStep: Number((run.seconds / (ROUNDS * STEPS)).toFixed(3)),
    tokensPerSecond: Math.round(run.seqTokens / run.seconds),
    responseTokensPerSecond: Math.round(run.tokens / run.seconds),
    /** FLOPs of all measured steps over their total time. */
    achievedGflops: Number(run.gflops.toFixed(2)),
    /** Median over rounds of the matmulSize³ matMul rate. */
    matmulGflops: Number(mm.toFixed(2)),
    matmulSize: MM,
    /** Median over rounds of (median step GFLOP/s) / (matMul GFLOP/s of the same round). */
    ratio: Number(median(rounds.map((x) => x.ratio)).toFixed(3)),
    /** achievedGflops / matmulGflops: counts stalled steps too. */
    ratioOfTotals: Number((run.gflops / mm).toFixed(3)),
    target: 0.5,
    rounds: rounds.map((x) => ({
      matmulGflops: Number(x.mm.toFixed(2)),
      medianStepGflops: Number(x.run.medianStepGflops.toFixed(2)),
      ratio: Number(x.ratio.toFixed(3)),
      ...(x.off && { tfjsOnlyMedianStepGflops: Number(x.off.medianStepGflops.toFixed(2)) }),
    })),
    /** Our kernels the model ran in the profiled step (none: the comparison below is left out). */
    ourKernels: prof.kernels.filter((k) => k.kernel.startsWith('Aft')).map((k) => k.kernel),
    /** The same steps on tfjs's own kernels (wasm: our SIMD kernels and buffer sharing off; webgpu: our WGSL off). */
    tfjsOnly: tfjsOnly && { ...tfjsOnly, ratio: Number((tfjsOnly.medianStepGflops / mm).toFixed(3)) },
    /** GFLOP/s of this step's matMul shapes alone with fresh operands, tf.matMul and our SIMD kernel. */
    shapeGflops: shapes,
    /** The step's 8 costliest kernels (shares of the step's kernel time, AdamW's update included). */
    profile: prof.kernels.slice(0, 8),
    /** The whole profile: timing method, kernel time, calls, every kernel, and the composites' shares. */
    stepProfile: prof,
  });
  s.dispose();
}
console.log(
  JSON.stringify(
    {
      bench: 'train',
      backend: backend.name,
      kernels: backend.kernels ?? (gpuKernels.length ? `wgsl: ${gpuKernels.join(', ')}` : undefined),
      backendInfo: backend,
      machine: { cpus: cpus().length, loadAverageBefore: loadBefore, loadAverageAfter: load() },
      results,
    },
    null,
    2,
  ),
);
