/**
 * One backend's numbers for webgpu-parity.int.test.ts, in a process of its own (a tfjs backend is process-global).
 * Everything is seeded, so two backends see the same model, batches and scores, and the trainer's own code computes
 * them — reads are asynchronous only, as tfjs-webgpu in Node cannot read synchronously:
 *
 *   tsx webgpu-parity-probe.ts <backend> <out.json>
 *     the tiny GPT's logits; every ranking loss (each constraint) and its gradient with respect to the scores
 *     (`lossAndGrads`); each method's whole alignment objective and the VFT NLL with their gradients with respect
 *     to every parameter; 20 VFT steps through the trainer (RunSession.train: trainLoop and AdamW), saving a
 *     checkpoint after step 10 (`<out.json>.checkpoint`); then, on the trained model, greedy decoding through the
 *     KV cache with each token's log-probability (and the same log-probabilities from one forward pass without the
 *     cache), `generate` greedy and seeded-sampled, and `evaluate` on a few validation questions.
 *   tsx webgpu-parity-probe.ts <backend> <out.json> <checkpoint dir>
 *     resumes that checkpoint (written on either backend) and trains on to step 20.
 */
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import {
  alignObjective,
  backendRecord,
  BOS,
  CONSTRAINTS,
  EOS,
  evaluate,
  generate,
  GREEDY,
  initBackend,
  loadCheckpoint,
  lossAndGrads,
  makeBatch,
  nllLoss,
  promptOf,
  RANKING_METHODS,
  referenceLogProbs,
  resolveVftConfig,
  Rng,
  toEvalProblem,
  VftSession,
  type CharTokenizer,
  type GPT,
  type KVCache,
  type LabelledQuestion,
  type SampledCandidate,
} from '../src';

/** Steps trained; the checkpoint is saved after `SPLIT` of them. */
const STEPS = 20;
const SPLIT = 10;
const MAX_NEW = 32;

const [backendName, out, resumeFrom] = process.argv.slice(2);
if (!backendName || !out) throw new Error('usage: webgpu-parity-probe.ts <backend> <out.json> [checkpoint dir]');
const t0 = performance.now();
const backend = await initBackend(backendName);
// the tiny preset's warm-up over 20 steps: the curve moves from ~3.6 to well under it, so a drift would show
const s = new VftSession(resolveVftConfig('tiny', { steps: STEPS, batchSize: 8 }));
const model = s.model;
const seconds = () => (performance.now() - t0) / 1000;
/** Seconds at the end of each phase, to see where a slow backend spends its time. */
const phases: Record<string, number> = { init: seconds() };

/** Trains the session on to `endStep` through the trainer; each step's loss and pre-clip gradient norm. */
async function trainTo(endStep: number) {
  const loss: number[] = [];
  const gradNorm: number[] = [];
  await s.train({
    endStep,
    accumulate: 1,
    nextBatch: s.nextBatch,
    loss: (m, b) => ({ loss: nllLoss(m, b) }),
    onStep: (i) => {
      loss.push(i.loss);
      gradNorm.push(i.gradNorm);
    },
  });
  return { loss, gradNorm };
}

if (resumeFrom) {
  const c = await loadCheckpoint(resumeFrom);
  await s.restore(c);
  const from = { backend: c.meta.extra['backend'], step: c.meta.step };
  const curve = await trainTo(STEPS);
  writeFileSync(out, JSON.stringify({ backend: backendRecord(backend), from, curve, seconds: seconds() }));
  process.exit(0);
}

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
phases['logits'] = seconds();
const r = new Rng(7);
const groups = Array.from({ length: 3 }, () => ({
  scores: Array.from({ length: 4 }, () => -1 - 2 * r.next()),
  refScores: Array.from({ length: 4 }, () => -30 - 10 * r.next()),
  ranks: [0, 1, 1, 2],
}));
const pure: Record<string, { loss: number; grads: number[] }> = {};
for (const method of RANKING_METHODS) {
  for (const constraint of CONSTRAINTS) {
    const { loss, grads } = await lossAndGrads({ method, constraint, beta: 0.1, dpoBeta: 0.1 }, groups);
    pure[`${method}/${constraint}`] = { loss, grads: grads.flat() };
  }
}

phases['pure'] = seconds();
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

phases['objective'] = seconds();
// 20 steps through the trainer, checkpointed halfway: the other backend resumes it
const first = await trainTo(SPLIT);
const checkpoint = `${out}.checkpoint`;
await s.save(checkpoint);
const rest = await trainTo(STEPS);
const curve = { loss: [...first.loss, ...rest.loss], gradNorm: [...first.gradNorm, ...rest.gradNorm] };

phases['train'] = seconds();
/**
 * Greedy decoding of one question through the KV cache (the prompt read once, then `decodeStep`), as `generate`
 * decodes: each token and its log-probability, and the smallest gap between the two most likely tokens' (how close
 * an argmax came to flipping). `full`: the same log-probabilities from one forward pass without the cache.
 */
async function cachedGreedy(m: GPT, tok: CharTokenizer, question: string) {
  const prompt = [BOS, ...tok.encode(promptOf(question))];
  const n = Math.min(MAX_NEW, m.config.blockSize - prompt.length);
  const cache: KVCache = { k: [], v: [], length: 0 };
  const ids: number[] = [];
  const logProbs: number[] = [];
  let minGap = Infinity;
  try {
    let next = tf.tidy(() => {
      const all = m.forward(tf.tensor2d([prompt], [1, prompt.length], 'int32'), cache);
      return tf.logSoftmax(tf.slice(all, [prompt.length - 1, 0], [1, -1]));
    });
    for (let t = 0; t < n; t++) {
      const row = (await next.data()) as Float32Array;
      next.dispose();
      let [best, second] = [0, -Infinity];
      for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
      for (let i = 0; i < row.length; i++) if (i !== best) second = Math.max(second, row[i]!);
      ids.push(best);
      logProbs.push(row[best]!);
      minGap = Math.min(minGap, row[best]! - second);
      if (best === EOS || t === n - 1) break;
      next = tf.tidy(() => tf.logSoftmax(m.decodeStep(tf.tensor1d([best], 'int32'), cache)));
    }
  } finally {
    for (const x of [...cache.k, ...cache.v]) x.dispose();
  }
  const seq = [...prompt, ...ids.slice(0, -1)];
  const picked = tf.tidy(() => {
    const lp = tf.logSoftmax(m.forward(tf.tensor2d([seq], [1, seq.length], 'int32')));
    const rows = ids.map((_, i) => prompt.length - 1 + i);
    return tf.sum(tf.mul(tf.gather(lp, rows), tf.oneHot(tf.tensor1d(ids, 'int32'), lp.shape[1])), 1);
  });
  const full = Array.from(await picked.data());
  picked.dispose();
  return { ids, text: tok.decode(ids.filter((id) => id !== EOS)), logProbs, full, minGap };
}

const questions = s.data.test.slice(0, 4).map((p) => p.question);
const decoded = [];
for (const q of questions) decoded.push(await cachedGreedy(model, s.tok, q));
phases['decoded'] = seconds();
const opts = { ...GREEDY, maxNewTokens: MAX_NEW };
const greedy = await generate(model, s.tok, questions, opts, new Rng(5));
phases['greedy'] = seconds();
const sampled = await generate(model, s.tok, questions, { ...opts, temperature: 0.8 }, new Rng(11));
phases['sampled'] = seconds();
const sampledTopK = await generate(model, s.tok, questions, { ...opts, temperature: 1, topK: 5 }, new Rng(12));

phases['sampledTopK'] = seconds();
// evaluation on 6 validation questions: greedy accuracy and reference perplexity, 3 own samples of the first 2
// (assessment, rerank, majority), and a fixed candidate set — every correct COT and one with a wrong answer each
const evalProblems = s.data.val.slice(0, 6);
const fixedCandidates: SampledCandidate[] = evalProblems.flatMap((p) =>
  [...p.cots, p.cots[0]!.replace(/#### (\d+)$/, (_, a: string) => `#### ${Number(a) + 1}`)].map((text) => ({
    questionId: p.id,
    question: p.question,
    gold: p.answer,
    text,
  })),
);
const report = await evaluate(
  model,
  s.tok,
  evalProblems.map(toEvalProblem),
  { assessQuestions: 2, k: 3, temperature: 0.8, maxNewTokens: MAX_NEW, fixedCandidates },
  new Rng(13),
);

phases['eval'] = seconds();
writeFileSync(
  out,
  JSON.stringify({
    backend: backendRecord(backend),
    logits: logitsData,
    pure,
    objective,
    curve,
    checkpoint,
    decoded,
    greedy,
    sampled,
    sampledTopK,
    report,
    phases,
    seconds: seconds(),
  }),
);
