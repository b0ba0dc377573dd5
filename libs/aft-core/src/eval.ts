/**
 * Evaluation (docs/architecture.md "Metrics every run reports"), as one JSON object:
 * - task accuracy: greedy decoding on held-out questions, final-answer match;
 * - assessment accuracy: over held-out questions whose sampled COTs include both correct and incorrect ones, the
 *   fraction of (positive, negative) pairs the model scores in the right order (the paper's assessment view);
 * - mean positive and negative scores and their gap; reference-COT perplexity;
 * - malformed-output rate (no parsable answer) and repetition rate (a line repeated 3+ times, or no <eos>);
 * - on the sampled questions, best-of-k rerank and majority-vote accuracy, and optionally assessment accuracy on a
 *   fixed candidate set (assess.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { makeBatch, promptOf } from './data/batch';
import { grade } from './data/grader';
import type { GPT } from './model/gpt';
import { sequenceLogProbs } from './model/logprob';
import type { Rng } from './rng';
import {
  majorityCorrect,
  pairOrder,
  pairOutcomes,
  rerankCorrect,
  sampleCandidates,
  scoreCandidates,
  type SampledCandidate,
  type PairOrder,
} from './assess';
import { generate, GREEDY, type Generation } from './sample';
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
  /** A candidate set sampled once (from the parent) that every model scores: comparable assessment accuracy. */
  fixedCandidates?: readonly SampledCandidate[] | undefined;
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
  /** Questions that got k samples (the first `assessQuestions`): what rerank and majority accuracy are over. */
  sampledQuestions: number;
  /** Best-of-k: the model's highest-scored own sample decides; null without sampling. */
  rerankAccuracy: number | null;
  /** The most frequent final answer among the k samples decides; null without sampling. */
  majorityAccuracy: number | null;
  /** Assessment accuracy on `fixedCandidates`, when given: the same pairs for every model. */
  fixedAssessment: {
    accuracy: number | null;
    pairs: number;
    questions: number;
    /** Every pair's outcome, named the same in every run that scores the set (assess.ts pairOutcomes). */
    perPair: { id: string; ordered: boolean }[];
  } | null;
  /** A few greedy generations, for eyes. */
  examples: { id: string; question: string; output: string; correct: boolean }[];
  /**
   * Every question's greedy outcome, in order: what pairs two models question by question (docs/statistics.md) —
   * the paired comparisons and the degradation detector's paired tests read it.
   */
  perQuestion: QuestionOutcome[];
}

export interface QuestionOutcome {
  id: string;
  correct: boolean;
  /** No parsable final answer. */
  malformed: boolean;
  /** A line repeated 3+ times, or no end of sequence. */
  repetitive: boolean;
  /** Sampled questions only: best-of-k rerank and majority vote correct. */
  rerank?: boolean;
  majority?: boolean;
}

/** The fields of a report that drew no samples and was given no fixed candidate set. */
export const UNSAMPLED = {
  assessmentAccuracy: null,
  assessedQuestions: 0,
  pairs: 0,
  meanPositiveScore: null,
  meanNegativeScore: null,
  scoreGap: null,
  sampledQuestions: 0,
  rerankAccuracy: null,
  majorityAccuracy: null,
  fixedAssessment: null,
} as const satisfies Partial<EvalReport>;

/** The report fields of a pair ordering. */
function orderFields(o: PairOrder) {
  return {
    assessedQuestions: o.questions,
    pairs: o.pairs,
    assessmentAccuracy: o.pairs ? o.ordered / o.pairs : null,
    meanPositiveScore: o.meanPositiveScore,
    meanNegativeScore: o.meanNegativeScore,
    scoreGap:
      o.meanPositiveScore !== null && o.meanNegativeScore !== null ? o.meanPositiveScore - o.meanNegativeScore : null,
  };
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
    ...UNSAMPLED,
    perQuestion: problems.map((p, i) => ({
      id: p.id,
      correct: graded[i]!.correct,
      malformed: graded[i]!.extracted === null,
      repetitive: isRepetitive(greedy[i]!),
    })),
    examples: problems
      .slice(0, 4)
      .map((p, i) => ({ id: p.id, question: p.question, output: greedy[i]!.text, correct: graded[i]!.correct })),
  };
  const assess = problems.slice(0, o.assessQuestions);
  if (assess.length && o.k > 0) {
    const own = await scoreCandidates(model, tok, await sampleCandidates(model, tok, assess, o, rng), o.batchSize);
    Object.assign(report, orderFields(pairOrder([...own.values()])));
    const rerank = new Map([...own].map(([id, g]) => [id, rerankCorrect(g)]));
    const majority = new Map([...own].map(([id, g]) => [id, majorityCorrect(g)]));
    report.sampledQuestions = own.size;
    report.rerankAccuracy = [...rerank.values()].filter(Boolean).length / own.size;
    report.majorityAccuracy = [...majority.values()].filter(Boolean).length / own.size;
    for (const q of report.perQuestion) {
      if (rerank.has(q.id)) Object.assign(q, { rerank: rerank.get(q.id)!, majority: majority.get(q.id)! });
    }
  }
  if (o.fixedCandidates?.length) {
    const scored = await scoreCandidates(model, tok, o.fixedCandidates, o.batchSize);
    const order = pairOrder([...scored.values()]);
    report.fixedAssessment = {
      accuracy: order.pairs ? order.ordered / order.pairs : null,
      pairs: order.pairs,
      questions: order.questions,
      perPair: pairOutcomes(scored),
    };
  }
  return report;
}
