/**
 * Per-question outcomes of runs (libs/contracts/src/outcomes.ts: one sample row per question, sample index 0, in a
 * split such as `test/greedy`), read back compactly for a paired comparison: per run its question ids and a string
 * of '1'/'0' for right/wrong at the same index — 2,000 questions × 20 runs as 20 rows, not 40,000. The caller has
 * checked that the runs are the team's (`missingRuns`).
 */
import type { Pool } from 'pg';

export interface RunOutcomesRow {
  runId: string;
  name: string;
  method: string;
  constraint: string;
  parentRunId: string | null;
  seed: number | null;
  /** The run's config `beta` as stored (any JSON value; null when absent): what grouping into arms reads. */
  beta: unknown;
  /** The outcome splits the run has (among its latest SPLIT_SCAN_DEPTH step × split pairs), sorted. */
  splits: string[];
  /** The latest step with the asked split; null when the run has none. */
  step: number | null;
  questionIds: string[];
  /** '1' or '0' per question id (rows whose correct is null are left out). */
  correct: string;
}

/**
 * How many of a run's distinct (step, split) pairs, latest first, are looked through for its outcome splits. Each
 * is one index probe; runs log samples at evaluations (tens to hundreds of pairs), so this only bounds a run that
 * logged samples at every one of many thousands of steps.
 */
export const SPLIT_SCAN_DEPTH = 2000;

/**
 * For each of `runIds` (rows in no particular order; ids that are no run are left out): the run's fields that group
 * it into an arm, which outcome splits it has (`rulePatterns`: LIKE patterns such as `%/greedy`), and its outcomes
 * of `split` at the latest step that has that split. One statement:
 * - the splits come from a loose index scan of sample(run_id, step, split, …): each step of the recursion seeks the
 *   next lower (step, split) pair, so a run's thousands of sample rows per evaluation are skipped, not read;
 * - the latest step is one backward probe of that index per run, and its rows one range of it.
 */
export async function readRunOutcomes(
  pool: Pool,
  runIds: readonly string[],
  split: string,
  rulePatterns: readonly string[],
  /** Reads at most this many + 1 outcomes of a run (one more tells the caller it holds more). */
  maxPerRun: number,
): Promise<RunOutcomesRow[]> {
  const res = await pool.query<RunOutcomesRow>(
    `WITH RECURSIVE ids AS (SELECT DISTINCT id FROM unnest($1::text[]) AS u(id)),
     seen AS (
       SELECT i.id AS run_id, f.step, f.split, 1 AS depth
       FROM ids i
       CROSS JOIN LATERAL (SELECT s.step, s.split FROM sample s WHERE s.run_id = i.id
                           ORDER BY s.step DESC, s.split DESC LIMIT 1) f
       UNION ALL
       SELECT p.run_id, f.step, f.split, p.depth + 1
       FROM seen p
       CROSS JOIN LATERAL (SELECT s.step, s.split FROM sample s
                           WHERE s.run_id = p.run_id AND (s.step, s.split) < (p.step, p.split)
                           ORDER BY s.step DESC, s.split DESC LIMIT 1) f
       WHERE p.depth < $4
     ),
     splits AS (
       SELECT run_id, array_agg(DISTINCT split ORDER BY split) AS splits
       FROM seen WHERE split LIKE ANY($3::text[]) GROUP BY run_id
     )
     SELECT r.id AS "runId", r.name, r.method, r."constraint", r.parent_run_id AS "parentRunId", r.seed,
            r.config -> 'beta' AS beta, coalesce(sp.splits, '{}') AS splits, l.step,
            coalesce(q.question_ids, '{}') AS "questionIds", coalesce(q.correct, '') AS correct
     FROM ids i
     JOIN run r ON r.id = i.id
     LEFT JOIN splits sp ON sp.run_id = r.id
     LEFT JOIN LATERAL (SELECT s.step FROM sample s WHERE s.run_id = r.id AND s.split = $2
                        ORDER BY s.step DESC LIMIT 1) l ON true
     -- both aggregates read the same rows in the same order, so ids and bits line up without sorting
     LEFT JOIN LATERAL (SELECT array_agg(s.question_id) AS question_ids,
                               string_agg(CASE WHEN s.correct THEN '1' ELSE '0' END, '') AS correct
                        FROM (SELECT s.question_id, s.correct FROM sample s
                              WHERE s.run_id = r.id AND s.step = l.step AND s.split = $2 AND s.sample_idx = 0
                                AND s.correct IS NOT NULL
                              LIMIT $5) s) q ON true`,
    [runIds, split, rulePatterns, SPLIT_SCAN_DEPTH, maxPerRun + 1],
  );
  return res.rows;
}
