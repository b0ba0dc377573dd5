/**
 * Degradation detector: a pure function over a run's evaluations and its parent's. An alignment loss with no
 * constraint pushes worse COTs down without bound, and the model follows (the paper's App. E): reference
 * perplexity rises, outputs stop parsing, lines repeat, accuracy falls. The first evaluation with evidence of any
 * of these is the onset. docs/statistics.md, "The degradation detector", says why it is built this way.
 *
 * Rates on 50–100 validation questions are noisy (a 10-point accuracy drop on 60 questions is ~1.3 standard
 * errors), so a fixed drop cries wolf. Accuracy, malformed and repetition are instead decided by a one-sided exact
 * McNemar test against the parent on the same questions: of the questions where the two differ, are the run's
 * failures more than chance allows? A run is evaluated many times, so the false-alarm rate α is spent across the
 * looks (α·6/(π²k²) at the k-th, which sums to α however many there are) and shared by the three tests; a
 * significant change must also be at least the signal's floor to count. Reference perplexity averages thousands
 * of tokens and keeps a plain ratio limit; a non-finite one is degradation whatever the limits say.
 */
import type { EvalReport, QuestionOutcome } from './eval';
import { mcnemarOneSided } from './stats/distributions';

export interface DegradationThresholds {
  /** Reference perplexity over the parent's, e.g. 1.25 = 25% worse. */
  pplRatio: number;
  /** Family-wise false-alarm rate of the paired tests over a whole run (all looks, all three signals). */
  alpha: number;
  /** Smallest rise of the malformed-output rate over the parent's that counts, in absolute terms. */
  malformedRate: number;
  /** Smallest rise of the repetition rate (a line repeated 3+ times, or no <eos>) that counts. */
  repetitionRate: number;
  /** Smallest task-accuracy drop below the parent's that counts (0.05 = 5 points). */
  accuracyDrop: number;
}

export const DEGRADATION_DEFAULTS: DegradationThresholds = {
  pplRatio: 1.25,
  alpha: 0.05,
  malformedRate: 0.05,
  repetitionRate: 0.05,
  accuracyDrop: 0.05,
};

type Signal = Exclude<keyof DegradationThresholds, 'alpha'>;

export interface DegradationEvidence {
  signal: Signal;
  /** The run's value: a perplexity ratio, or the rate / accuracy drop on the paired questions. */
  value: number;
  limit: number;
  parent: number;
  /** Paired tests only: discordant questions going the bad way (b) and the good way (c), the one-sided exact p,
   * and the α this look spent on the test. */
  worse?: number;
  better?: number;
  p?: number;
  alphaSpent?: number;
}

export interface Degradation {
  degraded: boolean;
  /** Step of the first evaluation with evidence, or null. */
  onsetStep: number | null;
  evidence: DegradationEvidence[];
  /** Greedy generations from the last healthy evaluation and from the onset one. */
  before: EvalReport['examples'];
  after: EvalReport['examples'];
  /** The parent's generations for the same questions (the first evaluation questions are the same for every run). */
  parent: EvalReport['examples'];
}

/** The α the k-th look (1-based) may spend: α·6/(π²k²), so that all looks together spend at most α. */
export const alphaAtLook = (alpha: number, k: number) => (alpha * 6) / (Math.PI ** 2 * k ** 2);

/**
 * `bad` is undefined where an outcome does not say: a parent evaluation kept in a checkpoint written before
 * outcomes carried `malformed`/`repetitive` (its run resumed) has only `correct`, and a question it does not speak
 * for is left out of that test rather than counted as well formed.
 */
const PAIRED: { signal: Exclude<Signal, 'pplRatio'>; bad: (q: QuestionOutcome) => boolean | undefined }[] = [
  { signal: 'accuracyDrop', bad: (q) => (typeof q.correct === 'boolean' ? !q.correct : undefined) },
  { signal: 'malformedRate', bad: (q) => q.malformed },
  { signal: 'repetitionRate', bad: (q) => q.repetitive },
];

/** One paired test of the run against the parent over the questions both answered. */
function pairedEvidence(
  run: readonly QuestionOutcome[],
  parentById: ReadonlyMap<string, QuestionOutcome>,
  test: (typeof PAIRED)[number],
  floor: number,
  alphaSpent: number,
): DegradationEvidence | null {
  let n = 0;
  let runBad = 0;
  let parentBad = 0;
  let worse = 0;
  let better = 0;
  for (const q of run) {
    const p = parentById.get(q.id);
    const [r, b] = p ? [test.bad(q), test.bad(p)] : [];
    if (r === undefined || b === undefined) continue;
    n++;
    runBad += +r;
    parentBad += +b;
    if (r && !b) worse++;
    if (!r && b) better++;
  }
  if (n === 0) return null;
  const rise = (runBad - parentBad) / n;
  const p = mcnemarOneSided(worse, better);
  if (!(p < alphaSpent && rise > floor)) return null;
  const accuracy = test.signal === 'accuracyDrop';
  return {
    signal: test.signal,
    value: rise,
    limit: floor,
    // the parent's accuracy (not its error rate) reads naturally next to a drop
    parent: accuracy ? 1 - parentBad / n : parentBad / n,
    worse,
    better,
    p,
    alphaSpent,
  };
}

export function detectDegradation(
  evals: readonly { step: number; report: EvalReport }[],
  parent: EvalReport,
  limits: Partial<DegradationThresholds> = {},
): Degradation {
  const t = { ...DEGRADATION_DEFAULTS, ...limits };
  const parentById = new Map(parent.perQuestion.map((q) => [q.id, q]));
  const sorted = [...evals].sort((a, b) => a.step - b.step);
  let healthy: EvalReport = parent;
  for (const [i, { step, report: r }] of sorted.entries()) {
    const evidence: DegradationEvidence[] = [];
    const ratio = r.refPerplexity / parent.refPerplexity;
    if (ratio > t.pplRatio || !Number.isFinite(r.refPerplexity)) {
      evidence.push({
        signal: 'pplRatio',
        value: Number.isFinite(ratio) ? ratio : Infinity,
        limit: t.pplRatio,
        parent: 1,
      });
    }
    const spent = alphaAtLook(t.alpha, i + 1) / PAIRED.length;
    for (const test of PAIRED) {
      const e = pairedEvidence(r.perQuestion, parentById, test, t[test.signal], spent);
      if (e) evidence.push(e);
    }
    if (evidence.length) {
      return {
        degraded: true,
        onsetStep: step,
        evidence,
        before: healthy.examples,
        after: r.examples,
        parent: parent.examples,
      };
    }
    healthy = r;
  }
  return { degraded: false, onsetStep: null, evidence: [], before: [], after: [], parent: [] };
}
