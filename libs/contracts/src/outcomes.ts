/**
 * Per-question outcomes of an evaluation, as the worker logs them and the paired comparison reads them back
 * (docs/statistics.md): one sample row per question (sample index 0, empty prompt and completion — the run's
 * examples carry text), in a split named for the evaluation split and the decision rule, so that two runs evaluated
 * on the same questions pair question by question.
 */

/** How an evaluated model answers a question: greedy decoding, the best of its k samples by its own score, or the
 * majority of their final answers. */
export const OUTCOME_RULES = ['greedy', 'rerank', 'majority'] as const;
export type OutcomeRule = (typeof OUTCOME_RULES)[number];

/**
 * Assessment on a fixed candidate set (sampled once from the parent, scored by every run): one row per (positive,
 * negative) candidate pair, named `<set>:<question>#<i>><j>` by the set's digest and the candidates' positions, right
 * when the run scores the positive above. Every run scores the same pairs, so two runs pair pair by pair, as answers pair question by question.
 */
export const ASSESS_RULE = 'assess';
/** The most outcomes of one run (at one step and split) a paired comparison reads; a run logs no more than this. */
export const PAIRED_MAX_OUTCOMES_PER_RUN = 20_000;

/** Every rule whose outcome rows a paired comparison reads. */
export const PAIRED_RULES = [...OUTCOME_RULES, ASSESS_RULE] as const;
export type PairedRule = (typeof PAIRED_RULES)[number];

/** The sample split of one rule's outcomes on an evaluation split, e.g. `test/greedy`. */
export const outcomeSplit = (split: string, rule: PairedRule) => `${split}/${rule}`;

/** Whether a sample split holds outcome rows (no text to read). */
export const isOutcomeSplit = (split: string) => PAIRED_RULES.some((r) => split.endsWith(`/${r}`));
