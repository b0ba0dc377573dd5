/**
 * `npm run bench:train`: training throughput of the GPT on this machine's backend, for the `tiny` and `small`
 * presets. Prints JSON: tokens/s, the model's achieved GFLOP/s (analytic FLOPs of forward + backward), the
 * plain 512³ matMul GFLOP/s measured in the same process, their ratio, and where a step's time goes (kernels).
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, nllLoss, resolveVftConfig, trainLoop, VftSession, type GPTConfig } from '@aft/aft-core';

const STEPS = Number(process.env['BENCH_STEPS'] ?? 12);

async function matmulGflops(): Promise<number> {
  const a = tf.randomNormal([512, 512]) as tf.Tensor2D;
  const b = tf.randomNormal([512, 512]) as tf.Tensor2D;
  for (let i = 0; i < 3; i++) tf.matMul(a, b).dispose();
  const n = 10;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
  }
  const ms = (performance.now() - t0) / n;
  a.dispose();
  b.dispose();
  return (2 * 512 ** 3) / ms / 1e6;
}

/**
 * GFLOP/s of one matMul shape with fresh operands every call, as in training (activations change every step;
 * the wasm backend's XNNPACK path packs the right operand anew each time).
 */
async function shapeGflops(a: number[], b: number[]): Promise<number> {
  const flops = 2 * a.slice(0, -1).reduce((x, y) => x * y, 1) * a[a.length - 1]! * b[b.length - 1]!;
  let ms = 0;
  for (let i = 0; i < 8; i++) {
    const [x, y] = [tf.randomNormal(a as [number, number, number]), tf.randomNormal(b as [number, number, number])] as [
      tf.Tensor3D,
      tf.Tensor3D,
    ];
    await Promise.all([x.data(), y.data()]);
    const t0 = performance.now();
    const c = tf.matMul(x, y);
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
  const attention = c.nLayer * 2 * 2 * T * T * D; // QKᵀ and PV over the full T×T
  return 3 * (perTokenMatmul * T + attention);
}

const results = [];
const backend = await initBackend();
for (const preset of ['tiny', 'small'] as const) {
  const mmBefore = await matmulGflops();
  const s = new VftSession(resolveVftConfig(preset, { steps: STEPS + 2 }));
  let tokens = 0;
  let flops = 0;
  let ms = 0;
  const next = s.nextBatch;
  await trainLoop({
    model: s.model,
    optimizer: s.optimizer,
    rng: s.rng,
    startStep: 0,
    endStep: STEPS + 2,
    accumulate: 1,
    nextBatch: next,
    loss: (m, b) => ({ loss: nllLoss(m, b) }),
    onStep: (info) => {
      if (info.step < 2) return; // warm-up steps compile kernels
      ms += info.ms;
    },
  });
  // token and FLOP counts of the same number of batches from the same distribution
  const rng = s.rng.fork();
  let seqTokens = 0;
  for (let i = 0; i < STEPS; i++) {
    const b = next(rng);
    seqTokens += b.B * b.T;
    flops += b.B * trainFlops(s.model.config, b.T);
    tokens += b.weight.reduce((a, w) => a + w, 0);
  }
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
  const shapes = {
    mlp2d: await shapeGflops([b.B * b.T, D], [D, 4 * D]),
    attentionBatched: await shapeGflops([b.B * H, b.T, D / H], [b.B * H, D / H, b.T]),
  };
  // the plain-matMul rate, best of a measurement before and after training (it varies with the heap)
  const mm = Math.max(mmBefore, await matmulGflops());
  const seconds = ms / 1000;
  const achieved = flops / seconds / 1e9;
  results.push({
    preset,
    params: s.model.numParams,
    config: s.model.config,
    steps: STEPS,
    secondsPerStep: Number((seconds / STEPS).toFixed(3)),
    tokensPerSecond: Math.round(seqTokens / seconds),
    responseTokensPerSecond: Math.round(tokens / seconds),
    achievedGflops: Number(achieved.toFixed(2)),
    matmulGflops: Number(mm.toFixed(2)),
    ratio: Number((achieved / mm).toFixed(3)),
    target: 0.5,
    /** GFLOP/s of this step's matMul shapes alone, fresh operands: where the ratio is lost. */
    shapeGflops: {
      mlp2d: Number(shapes.mlp2d.toFixed(2)),
      attentionBatched: Number(shapes.attentionBatched.toFixed(2)),
    },
    profile: [...byKernel]
      .sort((a, x) => x[1] - a[1])
      .slice(0, 8)
      .map(([k, t]) => ({ kernel: k, share: Number((t / total).toFixed(3)) })),
  });
  s.dispose();
}
console.log(JSON.stringify({ bench: 'train', backend: backend.name, results }, null, 2));
