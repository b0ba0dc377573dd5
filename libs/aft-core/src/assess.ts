/**
 * What a model's own scores say about its samples (docs/architecture.md "Metrics every run reports"):
 * - assessment accuracy: the fraction of (positive, negative) candidate pairs of a question the model orders right;
 * - best-of-k rerank: the model's highest-scored sample decides the question;
 * - majority vote: the most frequent final answer among the samples decides it.
 * A fixed candidate set — sampled once from the parent, scored by every model — makes assessment accuracy
 * comparable across methods: each model's own fresh samples would give each a different test.
 */
import { grade } from './data/grader';
import type { GPT } from './model/gpt';
import type { Rng } from './rng';
import { generate, scoreCompletions } from './sample';
import type { CharTokenizer } from './tokenizer';

/** One sampled completion of a question, graded, with the scoring model's score. */
export interface ScoredCandidate {
  text: string;
  answer: string | null;
  correct: boolean;
  score: number;
}

export interface PairOrder {
  /** Questions with at least one positive and one negative distinct candidate. */
  questions: number;
  pairs: number;
  ordered: number;
  meanPositiveScore: number | null;
  meanNegativeScore: number | null;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/** Pair ordering over questions' candidates; repeated texts of a question count once. */
export function pairOrder(groups: readonly (readonly ScoredCandidate[])[]): PairOrder {
  const out: PairOrder = { questions: 0, pairs: 0, ordered: 0, meanPositiveScore: null, meanNegativeScore: null };
  const pos: number[] = [];
  const neg: number[] = [];
  for (const g of groups) {
    // the first copy of a repeated text, as pairOutcomes names pairs (copies may score apart in the last bits)
    const seen = new Map<string, ScoredCandidate>();
    for (const c of g) if (!seen.has(c.text)) seen.set(c.text, c);
    const P = [...seen.values()].filter((c) => c.correct).map((c) => c.score);
    const N = [...seen.values()].filter((c) => !c.correct).map((c) => c.score);
    pos.push(...P);
    neg.push(...N);
    if (!P.length || !N.length) continue;
    out.questions++;
    for (const a of P)
      for (const b of N) {
        out.pairs++;
        if (a > b) out.ordered++;
      }
  }
  out.meanPositiveScore = mean(pos);
  out.meanNegativeScore = mean(neg);
  return out;
}

/**
 * Each (positive, negative) pair of a question's distinct candidates (as pairOrder counts them), named
 * `<question>#<i>><j>` by the candidates' first positions in the question's list, and whether the positive scores
 * above. On a fixed candidate set a name means the same pair in every run: what the paired comparison pairs on
 * (libs/contracts/src/outcomes.ts ASSESS_RULE).
 */
export function pairOutcomes(
  groups: ReadonlyMap<string, readonly ScoredCandidate[]>,
): { id: string; ordered: boolean }[] {
  const out: { id: string; ordered: boolean }[] = [];
  for (const [q, g] of groups) {
    const first = new Map<string, number>();
    g.forEach((c, i) => first.has(c.text) || first.set(c.text, i));
    const distinct = [...first.values()];
    const P = distinct.filter((i) => g[i]!.correct);
    const N = distinct.filter((i) => !g[i]!.correct);
    for (const i of P) for (const j of N) out.push({ id: `${q}#${i}>${j}`, ordered: g[i]!.score > g[j]!.score });
  }
  return out;
}

/** The best-of-k pick: the highest score wins, the first sample among equals. */
export function rerankCorrect(g: readonly ScoredCandidate[]): boolean {
  let best: ScoredCandidate | undefined;
  for (const c of g) if (!best || c.score > best.score) best = c;
  return best?.correct ?? false;
}

/**
 * The majority-vote pick: the most frequent parsable final answer; a tie goes to the answer whose best sample
 * scores highest. No parsable answer at all is wrong.
 */
export function majorityCorrect(g: readonly ScoredCandidate[]): boolean {
  const votes = new Map<string, { n: number; best: number; correct: boolean }>();
  for (const c of g) {
    if (c.answer === null) continue;
    const v = votes.get(c.answer) ?? { n: 0, best: -Infinity, correct: c.correct };
    votes.set(c.answer, { n: v.n + 1, best: Math.max(v.best, c.score), correct: v.correct });
  }
  let win: { n: number; best: number; correct: boolean } | undefined;
  for (const v of votes.values()) if (!win || v.n > win.n || (v.n === win.n && v.best > win.best)) win = v;
  return win?.correct ?? false;
}

export interface SampledCandidate {
  questionId: string;
  question: string;
  gold: string;
  text: string;
}

/** Draws k samples per question: the candidates a fixed assessment set is made of, or one model's own. */
export async function sampleCandidates(
  model: GPT,
  tok: CharTokenizer,
  problems: readonly { id: string; question: string; answer: string }[],
  o: { k: number; temperature: number; topK: number; maxNewTokens: number; batchSize: number },
  rng: Rng,
): Promise<SampledCandidate[]> {
  const qs = problems.flatMap((p) => Array.from({ length: o.k }, () => p));
  const samples = await generate(
    model,
    tok,
    qs.map((p) => p.question),
    { temperature: o.temperature, topK: o.topK, maxNewTokens: o.maxNewTokens, batchSize: o.batchSize },
    rng,
  );
  return samples.map((s, i) => ({
    questionId: qs[i]!.id,
    question: qs[i]!.question,
    gold: qs[i]!.answer,
    text: s.text,
  }));
}

/** Scores candidates with `model` and groups them by question, in first-seen question order. */
export async function scoreCandidates(
  model: GPT,
  tok: CharTokenizer,
  candidates: readonly SampledCandidate[],
  batchSize = 64,
): Promise<Map<string, ScoredCandidate[]>> {
  const scores = await scoreCompletions(
    model,
    tok,
    candidates.map((c) => ({ question: c.question, completion: c.text })),
    batchSize,
  );
  const groups = new Map<string, ScoredCandidate[]>();
  candidates.forEach((c, i) => {
    const g = grade(c.text, c.gold);
    const list = groups.get(c.questionId) ?? [];
    list.push({ text: c.text, answer: g.extracted, correct: g.correct, score: scores[i]! });
    groups.set(c.questionId, list);
  });
  return groups;
}
