/**
 * Sample and label (the paper's step 2): from a VFT checkpoint, k COTs per question at temperature T,
 * de-duplicated, each graded against the gold answer (or, with `stepStrict`, positive only when every step is
 * right too), ranked, and scored with the model's own s(c). The labelled set is written as JSON lines: it becomes
 * an artifact that every alignment run sharing the parent reuses.
 */
import { createWriteStream } from 'node:fs';
import { rankKey, type ArithProblem } from './data/arith';
import { grade } from './data/grader';
import type { GPT } from './model/gpt';
import type { Rng } from './rng';
import { generate, scoreCompletions } from './sample';
import type { CharTokenizer } from './tokenizer';

export interface Candidate {
  text: string;
  /** Final answer matches the gold one. */
  correct: boolean;
  /** Every step is arithmetically right (and the answer too). */
  allStepsRight: boolean;
  correctSteps: number;
  /** Positive under the labelling rule in force. */
  positive: boolean;
  /** 0 is best; binary feedback uses 0 for positive and 1 for negative; ranked feedback orders by steps. */
  rank: number;
  binaryRank: number;
  score: number;
}

export interface LabelledQuestion {
  id: string;
  question: string;
  answer: string;
  reference: string;
  candidates: Candidate[];
}

export interface LabelOptions {
  k: number;
  temperature: number;
  topK: number;
  maxNewTokens: number;
  batchSize: number;
  /** Positive only when every step is right (a right answer can come from two wrong steps). */
  stepStrict: boolean;
}

export const LABEL_DEFAULTS: LabelOptions = {
  k: 8,
  temperature: 0.8,
  topK: 0,
  maxNewTokens: 48,
  batchSize: 64,
  stepStrict: false,
};

export interface LabelSummary {
  questions: number;
  samples: number;
  distinctPerQuestion: number;
  positiveFraction: number;
  /** Questions with at least one positive and one negative candidate: the ones binary losses can use. */
  mixedQuestions: number;
  mixedFraction: number;
  /** Positives whose steps are not all right (a weak signal: the DESIGN prototype saw 66–76%). */
  positivesWithWrongStep: number;
}

/** Ranked feedback: a positive with every step right first, then by the number of correct steps (more is better). */
function rankCandidates(cands: Omit<Candidate, 'rank'>[]): Candidate[] {
  const keyOf = (c: Omit<Candidate, 'rank'>) =>
    (c.positive && c.allStepsRight ? 1e6 : 0) + (c.positive ? 1e3 : 0) + c.correctSteps;
  const keys = [...new Set(cands.map(keyOf))].sort((a, b) => b - a);
  return cands.map((c) => ({ ...c, rank: keys.indexOf(keyOf(c)) }));
}

export async function labelQuestions(
  model: GPT,
  tok: CharTokenizer,
  problems: readonly ArithProblem[],
  opts: Partial<LabelOptions>,
  rng: Rng,
  onProgress?: (done: number, total: number) => void,
): Promise<{ questions: LabelledQuestion[]; summary: LabelSummary }> {
  const o = { ...LABEL_DEFAULTS, ...opts };
  const out: LabelledQuestion[] = [];
  const chunk = Math.max(1, Math.floor(256 / o.k));
  for (let s = 0; s < problems.length; s += chunk) {
    const part = problems.slice(s, s + chunk);
    const qs = part.flatMap((p) => Array.from({ length: o.k }, () => p.question));
    const gens = await generate(model, tok, qs, o, rng);
    part.forEach((p, i) => {
      const texts = [...new Set(gens.slice(i * o.k, (i + 1) * o.k).map((g) => g.text))];
      const cands = texts.map((text) => {
        const g = grade(text, p.answer);
        const r = rankKey(text, g.correct);
        const positive = o.stepStrict ? r.allStepsRight : g.correct;
        return {
          text,
          correct: g.correct,
          allStepsRight: r.allStepsRight,
          correctSteps: r.correctSteps,
          positive,
          binaryRank: positive ? 0 : 1,
          score: 0,
        };
      });
      out.push({
        id: p.id,
        question: p.question,
        answer: p.answer,
        reference: p.cots[p.ref]!,
        candidates: rankCandidates(cands),
      });
    });
    onProgress?.(Math.min(s + chunk, problems.length), problems.length);
  }
  // score every distinct candidate with the model's own s(c)
  const flat = out.flatMap((q) => q.candidates.map((c) => ({ question: q.question, completion: c.text, c })));
  const scores = await scoreCompletions(model, tok, flat, o.batchSize);
  flat.forEach((f, i) => (f.c.score = scores[i]!));
  const cands = out.flatMap((q) => q.candidates);
  const mixed = out.filter((q) => q.candidates.some((c) => c.positive) && q.candidates.some((c) => !c.positive)).length;
  const positives = cands.filter((c) => c.positive);
  return {
    questions: out,
    summary: {
      questions: out.length,
      samples: out.length * o.k,
      distinctPerQuestion: cands.length / Math.max(out.length, 1),
      positiveFraction: positives.length / Math.max(cands.length, 1),
      mixedQuestions: mixed,
      mixedFraction: mixed / Math.max(out.length, 1),
      positivesWithWrongStep: positives.filter((c) => !c.allStepsRight).length / Math.max(positives.length, 1),
    },
  };
}

export async function writeLabelledSet(path: string, questions: readonly LabelledQuestion[]): Promise<void> {
  const ws = createWriteStream(path);
  for (const q of questions) ws.write(`${JSON.stringify(q)}\n`);
  await new Promise<void>((res, rej) => ws.end((e?: Error | null) => (e ? rej(e) : res())));
}
