/** Metrics as the MLflow API reads them: each key's latest value per run, and one key's history. */
import type { Pool, PoolClient } from 'pg';
import { readPoints, STEP_MAX, STEP_MIN } from '../metric-chunks';
import { writeToRun } from '../touch';

type Queryable = Pick<Pool | PoolClient, 'query'>;

export interface LastMetricValue {
  run_id: string;
  key: string;
  last_value: number;
  last_step: number;
  /** When the key was last logged. */
  t: Date;
}

/** The latest value of every key of each run, by key. */
export async function lastMetricValues(c: Queryable, runIds: readonly string[]): Promise<LastMetricValue[]> {
  const r = await c.query<LastMetricValue>(
    `SELECT run_id, key, last_value, last_step, updated_at AS t FROM run_metric WHERE run_id = ANY($1::text[]) ORDER BY key`,
    [runIds],
  );
  return r.rows;
}

/** One key's points of a run (by its number), in step order; `t` is the wall time in ms since the epoch. */
export async function metricHistory(
  c: Queryable,
  runNum: string,
  key: string,
  page: { limit: number; offset: number },
): Promise<{ step: number; value: number; t: string }[]> {
  const k = await c.query<{ id: number }>('SELECT id FROM metric_key WHERE name = $1', [key]);
  if (!k.rows[0]) return [];
  // chunks and tail merged; a page reads the whole key (chunk headers could skip whole chunks: not yet)
  const p = await readPoints(c, runNum, k.rows[0].id, STEP_MIN, STEP_MAX);
  const end = Math.min(p.steps.length, page.offset + page.limit);
  const out: { step: number; value: number; t: string }[] = [];
  for (let i = page.offset; i < end; i++) out.push({ step: p.steps[i]!, value: p.values[i]!, t: String(p.times[i]) });
  return out;
}

/**
 * Copies the latest value of each of `keys` into the run's summary (non-finite values as their strings), so the
 * runs table and the results can sort on what an MLflow client logged. A run write of its own (after
 * insertMetricPoints' transaction), so it is touched and announced like any other (docs/architecture.md, "Live
 * updates").
 */
export async function copyLastMetricsToSummary(
  pool: Pool,
  runId: string,
  teamId: string,
  keys: readonly string[],
): Promise<void> {
  await writeToRun(pool, runId, teamId, (c) =>
    c.query(
      `UPDATE run SET summary = summary || (
         SELECT jsonb_object_agg(key, CASE WHEN last_value IN ('NaN', 'Infinity', '-Infinity') THEN to_jsonb(last_value::text) ELSE to_jsonb(last_value) END)
         FROM run_metric WHERE run_id = $1 AND key = ANY($2::text[]))
       WHERE id = $1`,
      [runId, keys],
    ),
  );
}
