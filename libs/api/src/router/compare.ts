import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import {
  armOf,
  compareArms,
  compareRuns,
  defaultControl,
  verdict,
  type Arm,
  type OutcomeRun,
} from '@aft/aft-core/stats';
import { id, PAIRED_MAX_OUTCOMES_PER_RUN, PAIRED_RULES, pgText } from '@aft/contracts';
import { readRunOutcomes, type RunOutcomesRow } from '@aft/db';
import { readProcedure } from '../trpc';
import { assertRuns } from './metrics';

/** The most runs one paired comparison reads (each brings all its questions' outcomes). */
export const PAIRED_MAX_RUNS = 200;
/**
 * The most question outcomes one run brings, and one comparison in all: the pairing and the bootstrap run on the
 * request's thread (0.6 s for 200 runs × 2,000 questions), so a request is bounded before that work, not after.
 */
export const PAIRED_MAX_QUESTIONS_PER_RUN = PAIRED_MAX_OUTCOMES_PER_RUN;
export const PAIRED_MAX_OUTCOMES = 400_000;

const RULE_PATTERNS = PAIRED_RULES.map((r) => `%/${r}`);

/** `<split>/<rule>`: the sample split the worker logs one rule's outcomes in (libs/contracts/src/outcomes.ts). */
const outcomeSplitInput = pgText
  .max(32, 'must be at most 32 characters')
  .refine((s) => PAIRED_RULES.some((r) => s.endsWith(`/${r}`) && s.length > r.length + 1), {
    message: `must be an outcome split, <split>/<rule> with rule ${PAIRED_RULES.join(', ')} (e.g. test/greedy)`,
  });

export const pairedInput = z.object({
  runIds: z
    .array(id)
    .min(1, 'at least one run')
    .max(PAIRED_MAX_RUNS, `at most ${PAIRED_MAX_RUNS} runs in one paired comparison`),
  split: outcomeSplitInput.default('test/greedy'),
  /** An arm key (`method|constraint|β`, as the results table groups runs); default: continued VFT, else VFT. */
  control: pgText.min(1).max(200).optional(),
});

const toOutcomeRun = (r: RunOutcomesRow, arm: Arm): OutcomeRun => ({
  id: r.runId,
  arm: arm.key,
  seed: r.seed ?? 0,
  questionIds: r.questionIds,
  correct: Uint8Array.from(r.correct, (ch) => (ch === '1' ? 1 : 0)),
});

export const compareRouter = {
  /**
   * Every arm (method × constraint × β) against a control on the same questions and seeds: per-seed Δ with
   * McNemar's b/c and p, mean Δ, t and paired-bootstrap 95 % intervals, wins and the verdict
   * (docs/statistics.md), from each run's outcomes of `split` at its latest step that has them.
   */
  paired: readProcedure.input(pairedInput).query(async ({ ctx, input }) => {
    const runIds = [...new Set(input.runIds)];
    await assertRuns(ctx.db, ctx.actor.teamId, runIds);
    const rows = await readRunOutcomes(ctx.db.pool, runIds, input.split, RULE_PATTERNS, PAIRED_MAX_QUESTIONS_PER_RUN);
    const big = rows.find((r) => r.questionIds.length > PAIRED_MAX_QUESTIONS_PER_RUN);
    if (big) {
      throw new TRPCError({
        code: 'BAD_REQUEST',
        message: `invalid input — runIds: run "${big.name}" holds more than ${PAIRED_MAX_QUESTIONS_PER_RUN.toLocaleString('en-US')} ${input.split} outcomes at one step, more than a paired comparison reads`,
      });
    }
    const total = rows.reduce((a, r) => a + r.questionIds.length, 0);
    if (total > PAIRED_MAX_OUTCOMES) {
      throw new TRPCError({
        code: 'BAD_REQUEST',
        message: `invalid input — runIds: these runs hold ${total.toLocaleString('en-US')} ${input.split} outcomes; a paired comparison reads at most ${PAIRED_MAX_OUTCOMES.toLocaleString('en-US')} (compare fewer runs)`,
      });
    }
    const order = new Map(runIds.map((r, i) => [r, i]));
    rows.sort((a, b) => order.get(a.runId)! - order.get(b.runId)!);
    const splits = [...new Set(rows.flatMap((r) => r.splits))].sort();
    const withOutcomes = rows.filter((r) => r.questionIds.length > 0);
    const armOfRun = new Map(withOutcomes.map((r) => [r.runId, armOf({ ...r, config: { beta: r.beta } })]));
    const arms = [...new Map([...armOfRun.values()].map((a) => [a.key, a])).values()].sort(compareArms);
    const runsOf = (key: string) => withOutcomes.filter((r) => armOfRun.get(r.runId)!.key === key);
    const armList = arms.map((a) => ({ key: a.key, label: a.label, runs: runsOf(a.key).length }));
    const base = { split: input.split, splits, runs: runIds.length, runsWithOutcomes: withOutcomes.length };
    const control = input.control ?? defaultControl(arms.map((a) => a.key));
    if (control === null)
      return { ...base, arms: armList, control: null, comparisons: [], unpaired: [], skipped: [], noise: null };
    if (!arms.some((a) => a.key === control)) {
      throw new TRPCError({
        code: 'BAD_REQUEST',
        message: `invalid input — control: no run of arm "${control}" has ${input.split} outcomes (arms: ${arms.map((a) => a.key).join(', ') || 'none'})`,
      });
    }
    const names = new Map(rows.map((r) => [r.runId, r.name]));
    const result = compareRuns(
      withOutcomes.map((r) => toOutcomeRun(r, armOfRun.get(r.runId)!)),
      control,
      { seed: 1 },
    );
    const comparisons = arms
      .filter((a) => result.arms[a.key])
      .map((a) => {
        const c = result.arms[a.key]!;
        return {
          key: a.key,
          label: a.label,
          ...c,
          perSeed: c.perSeed.map((s) => ({ ...s, runName: names.get(s.runId) ?? s.runId })),
          verdict: verdict(c),
        };
      });
    const label = (key: string) => arms.find((a) => a.key === key)!.label;
    return {
      ...base,
      arms: armList,
      control: { key: control, label: label(control), runs: runsOf(control).length, single: result.singleControl },
      comparisons,
      unpaired: result.unpaired.map((key) => ({ key, label: label(key) })),
      skipped: result.skipped.map((s) => ({
        runName: names.get(s.runId) ?? s.runId,
        label: label(s.arm),
        seed: s.seed,
      })),
      noise: result.noise,
    };
  }),
};
