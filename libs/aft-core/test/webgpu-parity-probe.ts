/**
 * One backend's numbers for webgpu-parity.int.test.ts, in a process of its own (a tfjs backend is process-global):
 * `tsx webgpu-parity-probe.ts <backend> <out.json>`. Everything is seeded, so two backends see the same model,
 * batches and scores: the tiny GPT's logits, every ranking loss (each constraint) and its gradient with respect to
 * the scores, each method's whole alignment objective (w_nll·NLL + L_method through the GPT) and the VFT NLL with
 * their gradients with respect to every parameter, and 20 VFT steps' losses.
 *
 * Reads are asynchronous only: tfjs-webgpu's synchronous read (`dataSync`) needs OffscreenCanvas, which Node lacks.
 * `lossAndGrads` and `AdamW.apply` (the clip norm) read synchronously, so this file computes the same things with
 * async reads: `groupsLoss` under `valueAndGrad`, and AdamW's unfused update (optim.ts) with the norm read first.
 */
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import {
  alignObjective,
  CONSTRAINTS,
  groupsLoss,
  initBackend,
  lrAt,
  makeBatch,
  nllLoss,
  promptOf,
  RANKING_METHODS,
  referenceLogProbs,
  resolveVftConfig,
  Rng,
  VftSession,
  type GPT,
  type LabelledQuestion,
  type LossSpec,
} from '../src';

const [backendName, out] = process.argv.slice(2);
if (!backendName || !out) throw new Error('usage: webgpu-parity-probe.ts <backend> <out.json>');
const t0 = performance.now();
const backend = await initBackend(backendName);

// 20 steps and the tiny preset's warm-up: the curve moves from ~3.6 to well under it, so a drift would show
const s = new VftSession(resolveVftConfig('tiny', { steps: 20, batchSize: 8 }));
const model = s.model;
const probe = s.data.train.slice(0, 4);
const batch = makeBatch(
  s.tok,
  probe.map((p) => ({ prompt: promptOf(p.question), response: p.cots[p.ref]! })),
  64,
);

const logits = tf.tidy(() => model.forward(tf.tensor2d(batch.input, [batch.B, batch.T], 'int32')));
const logitsData = Array.from(await logits.data());
logits.dispose();

/** The value and the gradient of every parameter (flattened in the model's order) of `f`. */
async function withParamGrads(m: GPT, f: () => tf.Scalar) {
  const { value, grads } = tf.variableGrads(f, [...m.params.values()]);
  const g: number[] = [];
  for (const v of m.params.values()) g.push(...(await grads[v.name]!.data()));
  const loss = (await value.data())[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  return { loss, grads: g };
}

// the pure losses on fixed scores: 3 groups of 4 candidates, ties included (ranks 0, 1, 1, 2)
const r = new Rng(7);
const groups = Array.from({ length: 3 }, () => ({
  scores: Array.from({ length: 4 }, () => -1 - 2 * r.next()),
  refScores: Array.from({ length: 4 }, () => -30 - 10 * r.next()),
  ranks: [0, 1, 1, 2],
}));
/** `lossAndGrads` (registry.ts) with asynchronous reads. */
async function pureLoss(spec: LossSpec) {
  const flat = tf.tensor1d(groups.flatMap((g) => g.scores));
  const { value, grad } = tf.valueAndGrad(
    (all: tf.Tensor) =>
      groupsLoss(
        spec,
        groups.map((g, i) => ({
          scores: tf.slice(all as tf.Tensor1D, [4 * i], [4]),
          ranks: g.ranks,
          refScores: tf.tensor1d(g.refScores),
        })),
      ).loss,
  )(flat);
  const out = { loss: (await value.data())[0]!, grads: Array.from(await grad.data()) };
  tf.dispose([flat, value, grad]);
  return out;
}
const pure: Record<string, { loss: number; grads: number[] }> = {};
for (const method of RANKING_METHODS) {
  for (const constraint of CONSTRAINTS) {
    pure[`${method}/${constraint}`] = await pureLoss({ method, constraint, beta: 0.1, dpoBeta: 0.1 });
  }
}

// each method's training objective through the GPT: two questions, their reference and two corrupted COTs
const labelled: LabelledQuestion[] = probe.slice(0, 2).map((p) => ({
  id: p.id,
  question: p.question,
  answer: p.answer,
  reference: p.cots[p.ref]!,
  candidates: [],
}));
const objective: Record<string, { loss: number; grads: number[] }> = {};
for (const method of RANKING_METHODS) {
  const spec = { method, constraint: 'boundary', beta: 0.1, dpoBeta: 0.1, wNll: 1 } as const;
  const gs = labelled.map((q) => ({
    q,
    texts: [q.reference, q.reference.replace(/\d/, '7'), q.reference.slice(0, -3)],
    ranks: [0, 1, 2],
  }));
  if (method === 'dpo') await referenceLogProbs(model, s.tok, gs);
  const o = alignObjective(s.tok, 64, gs, { ...spec, feedback: 'ranked', groupsPerStep: 2, maxCandidates: 3 });
  const b = o.nextBatch(new Rng(3));
  objective[method] = await withParamGrads(model, () => o.loss(model, b).loss);
}
objective['vft-nll'] = await withParamGrads(model, () => nllLoss(model, batch));

// 20 VFT steps from the same seed: the session's batches and schedule, AdamW's unfused update (optim.ts) with its
// global-norm clip, the norm read asynchronously
const c = s.config.optim;
const vars = [...model.params.entries()];
const moments = vars.map(([, p]) => [tf.variable(tf.zerosLike(p), false), tf.variable(tf.zerosLike(p), false)]);
const curve: number[] = [];
for (let step = 0; step < 20; step++) {
  const b = s.nextBatch(s.rng);
  const { value, grads } = tf.variableGrads(
    () => nllLoss(model, b),
    vars.map(([, v]) => v),
  );
  curve.push((await value.data())[0]!);
  const norm = tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))));
  const gradNorm = (await norm.data())[0]!;
  const scale = c.clipNorm > 0 && gradNorm > c.clipNorm ? c.clipNorm / (gradNorm + 1e-6) : 1;
  const [lr, t] = [lrAt(step, c), step + 1];
  tf.tidy(() => {
    vars.forEach(([n, p], i) => {
      const [m, v] = moments[i]!;
      const g = tf.mul(grads[p.name]!, scale);
      m!.assign(tf.add(tf.mul(m!, c.beta1), tf.mul(g, 1 - c.beta1)));
      v!.assign(tf.add(tf.mul(v!, c.beta2), tf.mul(tf.square(g), 1 - c.beta2)));
      const update = tf.div(tf.div(m!, 1 - c.beta1 ** t), tf.add(tf.sqrt(tf.div(v!, 1 - c.beta2 ** t)), c.eps));
      const decays = /(^wte|\.wqkv|\.wo|\.w1|\.w2)$/.test(n) && c.weightDecay > 0;
      p.assign(tf.sub(decays ? tf.mul(p, 1 - lr * c.weightDecay) : p, tf.mul(update, lr)));
    });
  });
  tf.dispose([value, norm, ...Object.values(grads)]);
}

writeFileSync(
  out,
  JSON.stringify({ backend, logits: logitsData, pure, objective, curve, seconds: (performance.now() - t0) / 1000 }),
);
