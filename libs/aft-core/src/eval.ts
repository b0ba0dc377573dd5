/**
 * Evaluation (docs/architecture.md "Metrics every run reports"), as one JSON object:
 * - task accuracy: greedy decoding on held-out questions, final-answer match;
 * - assessment accuracy: over held-out questions whose sampled COTs include both correct and incorrect ones, the
 *   fraction of (positive, negative) pairs the model scores in the right order (the paper's assessment view);
 * - mean positive and negative scores and their gap; reference-COT perplexity;
 * - malformed-output rate (no parsable answer) and repetition rate (a line repeated 3+ times, or no <eos>).
 */
import * as tf from '@tensorflow/tfjs';
import { makeBatch, promptOf } from './data/batch';
import { grade } from './data/grader';
import type { GPT } from './model/gpt';
import { sequenceLogProbs } from './model/logprob';
import type { Rng } from './rng';
import { generate, GREEDY, scoreCompletions, type Generation } from './sample';
import type { CharTokenizer } from './tokenizer';

export interface EvalProblem {
  id: string;
  question: string;
  answer: string;
  /** The reference COT. */
  reference: string;
}

export interface EvalOptions {
  /** Questions (from the start of the list) that also get k samples for assessment accuracy; 0 skips it. */
  assessQuestions: number;
  k: number;
  temperature: number;
  topK: number;
  maxNewTokens: number;
  batchSize: number;
}

export const EVAL_DEFAULTS: EvalOptions = {
  assessQuestions: 100,
  k: 8,
  temperature: 0.8,
  topK: 0,
  maxNewTokens: 48,
  batchSize: 64,
};

export interface EvalReport {
  questions: number;
  taskAccuracy: number;
  malformedRate: number;
  repetitionRate: number;
  refPerplexity: number;
  assessmentAccuracy: number | null;
  assessedQuestions: number;
  pairs: number;
  meanPositiveScore: number | null;
  meanNegativeScore: number | null;
  scoreGap: number | null;
  /** A few greedy generations, for eyes. */
  examples: { id: string; question: string; output: string; correct: boolean }[];
  /** Every question's greedy correctness, in order: what pairs two models question by question (docs/statistics.md). */
  perQuestion: { id: string; correct: boolean }[];
}

export function isRepetitive(g: Generation): boolean {
  if (!g.finished) return true;
  const counts = new Map<string, number>();
  for (const line of g.text.split('\n')) if (line.trim()) counts.set(line, (counts.get(line) ?? 0) + 1);
  return [...counts.values()].some((c) => c >= 3);
}

export async function referencePerplexity(
  model: GPT,
  tok: CharTokenizer,
  problems: readonly EvalProblem[],
  batchSize = 64,
) {
  let sum = 0;
  let count = 0;
  for (let s = 0; s < problems.length; s += batchSize) {
    const batch = makeBatch(
      tok,
      problems.slice(s, s + batchSize).map((p) => ({ prompt: promptOf(p.question), response: p.reference })),
      model.config.blockSize,
    );
    const [a, b] = tf.tidy(() => {
      const r = sequenceLogProbs(model, batch);
      return [tf.sum(r.sum), tf.sum(r.count)];
    });
    sum += (await a!.data())[0]!;
    count += (await b!.data())[0]!;
    a!.dispose();
    b!.dispose();
  }
  return Math.exp(-sum / Math.max(count, 1));
}

export async function evaluate(
  model: GPT,
  tok: CharTokenizer,
  problems: readonly EvalProblem[],
  opts: Partial<EvalOptions>,
  rng: Rng,
): Promise<EvalReport> {
  const o = { ...EVAL_DEFAULTS, ...opts };
  const greedy = await generate(
    model,
    tok,
    problems.map((p) => p.question),
    { ...GREEDY, maxNewTokens: o.maxNewTokens, batchSize: o.batchSize },
    rng,
  );
  const graded = greedy.map((g, i) => grade(g.text, problems[i]!.answer));
  const n = Math.max(problems.length, 1);
  const report: EvalReport = {
    questions: problems.length,
    taskAccuracy: graded.filter((g) => g.correct).length / n,
    malformedRate: graded.filter((g) => g.extracted === null).length / n,
    repetitionRate: greedy.filter(isRepetitive).length / n,
    refPerplexity: await referencePerplexity(model, tok, problems, o.batchSize),
    assessmentAccuracy: null,
    assessedQuestions: 0,
    pairs: 0,
    meanPositiveScore: null,
    meanNegativeScore: null,
    scoreGap: null,
    perQuestion: problems.map((p, i) => ({ id: p.id, correct: graded[i]!.correct })),
    examples: problems
      .slice(0, 4)
      .map((p, i) => ({ id: p.id, question: p.question, output: greedy[i]!.text, correct: graded[i]!.correct })),
  };
  const assess = problems.slice(0, o.assessQuestions);
  if (assess.length && o.k > 0) {
    const qs = assess.flatMap((p) => Array.from({ length: o.k }, () => p.question));
    const samples = await generate(
      model,
      tok,
      qs,
      { temperature: o.temperature, topK: o.topK, maxNewTokens: o.maxNewTokens, batchSize: o.batchSize },
      rng,
    );
    const items = samples.map((s, i) => ({ question: qs[i]!, completion: s.text }));
    const scores = await scoreCompletions(model, tok, items, o.batchSize);
    let ordered = 0;
    let pairs = 0;
    const pos: number[] = [];
    const neg: number[] = [];
    assess.forEach((p, qi) => {
      const seen = new Map<string, { score: number; correct: boolean }>();
      for (let j = 0; j < o.k; j++) {
        const idx = qi * o.k + j;
        const text = samples[idx]!.text;
        if (!seen.has(text)) seen.set(text, { score: scores[idx]!, correct: grade(text, p.answer).correct });
      }
      const P = [...seen.values()].filter((c) => c.correct).map((c) => c.score);
      const N = [...seen.values()].filter((c) => !c.correct).map((c) => c.score);
      pos.push(...P);
      neg.push(...N);
      if (P.length && N.length) {
        report.assessedQuestions++;
        for (const a of P)
          for (const b of N) {
            pairs++;
            if (a > b) ordered++;
          }
      }
    });
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
    report.pairs = pairs;
    report.assessmentAccuracy = pairs ? ordered / pairs : null;
    report.meanPositiveScore = mean(pos);
    report.meanNegativeScore = mean(neg);
    report.scoreGap =
      report.meanPositiveScore !== null && report.meanNegativeScore !== null
        ? report.meanPositiveScore - report.meanNegativeScore
        : null;
  }
  return report;
}
