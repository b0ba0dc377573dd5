/**
 * Degradation detector: a pure function over a run's evaluations and its parent's. An alignment loss with no
 * constraint pushes worse COTs down without bound, and the model follows (the paper's App. E): reference
 * perplexity rises, outputs stop parsing, lines repeat, accuracy falls. Each signal has a configurable limit;
 * the first evaluation that crosses any of them is the onset.
 */
import type { EvalReport } from './eval';

export interface DegradationThresholds {
  /** Reference perplexity over the parent's, e.g. 1.25 = 25% worse. */
  pplRatio: number;
  /** Rise of the malformed-output rate (no parsable answer) over the parent's, in absolute terms. */
  malformedRate: number;
  /** Rise of the repetition rate (a line repeated 3+ times, or no <eos>) over the parent's. */
  repetitionRate: number;
  /** Task-accuracy drop below the parent's, in absolute terms (0.1 = 10 points). */
  accuracyDrop: number;
}

export const DEGRADATION_DEFAULTS: DegradationThresholds = {
  pplRatio: 1.25,
  malformedRate: 0.05,
  repetitionRate: 0.05,
  accuracyDrop: 0.1,
};

export interface Degradation {
  degraded: boolean;
  /** Step of the first evaluation past a limit, or null. */
  onsetStep: number | null;
  /** Which limits that evaluation crossed, with the values and the limits. */
  evidence: { signal: keyof DegradationThresholds; value: number; limit: number; parent: number }[];
  /** Greedy generations from the last healthy evaluation and from the onset one. */
  before: EvalReport['examples'];
  after: EvalReport['examples'];
  /** The parent's generations for the same questions (the first evaluation questions are the same for every run). */
  parent: EvalReport['examples'];
}

export function detectDegradation(
  evals: readonly { step: number; report: EvalReport }[],
  parent: EvalReport,
  limits: Partial<DegradationThresholds> = {},
): Degradation {
  const t = { ...DEGRADATION_DEFAULTS, ...limits };
  const sorted = [...evals].sort((a, b) => a.step - b.step);
  let healthy: EvalReport = parent;
  for (const { step, report: r } of sorted) {
    const evidence: Degradation['evidence'] = [];
    const ratio = r.refPerplexity / parent.refPerplexity;
    if (ratio > t.pplRatio) evidence.push({ signal: 'pplRatio', value: ratio, limit: t.pplRatio, parent: 1 });
    // rates count against the parent's own: a parent that already writes malformed answers is the baseline
    if (r.malformedRate - parent.malformedRate > t.malformedRate) {
      evidence.push({
        signal: 'malformedRate',
        value: r.malformedRate,
        limit: parent.malformedRate + t.malformedRate,
        parent: parent.malformedRate,
      });
    }
    if (r.repetitionRate - parent.repetitionRate > t.repetitionRate) {
      evidence.push({
        signal: 'repetitionRate',
        value: r.repetitionRate,
        limit: parent.repetitionRate + t.repetitionRate,
        parent: parent.repetitionRate,
      });
    }
    const drop = parent.taskAccuracy - r.taskAccuracy;
    if (drop > t.accuracyDrop)
      evidence.push({ signal: 'accuracyDrop', value: drop, limit: t.accuracyDrop, parent: parent.taskAccuracy });
    // a non-finite perplexity is degradation whatever the limits say
    if (!Number.isFinite(r.refPerplexity) && !evidence.some((e) => e.signal === 'pplRatio')) {
      evidence.push({ signal: 'pplRatio', value: Infinity, limit: t.pplRatio, parent: 1 });
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
