/** Metrics as the MLflow API reads them: each key's latest value per run, and one key's history. */
import type { Pool, PoolClient } from 'pg';
import { readPoints } from '../metric-chunks';
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
  const { lo, hi, skip } = await pageSteps(c, runNum, k.rows[0].id, page);
  if (lo > hi) return [];
  const p = await readPoints(c, runNum, k.rows[0].id, lo, hi);
  const end = Math.min(p.steps.length, skip + page.limit);
  const out: { step: number; value: number; t: string }[] = [];
  for (let i = skip; i < end; i++) out.push({ step: p.steps[i]!, value: p.values[i]!, t: String(p.times[i]) });
  return out;
}

/**
 * The step range a history page needs, from chunk headers and tail steps (no chunk decoded): the chunks holding
 * the page's first and last point, and how many points of that range precede the page. A fold between this and
 * the read moves points between tail and chunks but keeps which points a step range holds, so the page is exact.
 */
async function pageSteps(c: Queryable, runNum: string, keyId: number, page: { limit: number; offset: number }) {
  const rows = await c.query<{ lo: number; hi: number; n: number }>(
    `SELECT first_step AS lo, last_step AS hi, count AS n FROM metric_chunk WHERE run_num = $1 AND key_id = $2
     UNION ALL
     SELECT step, step, 1 FROM metric_point WHERE run_num = $1 AND key_id = $2
     ORDER BY 1, 2 DESC`,
    [runNum, keyId],
  );
  // segments in step order; a tail point inside a chunk's range (logged late, not yet folded) joins that chunk's
  const segs: { lo: number; hi: number; n: number }[] = [];
  for (const r of rows.rows) {
    const last = segs[segs.length - 1];
    if (last && r.lo <= last.hi) last.n += r.n;
    else segs.push({ ...r });
  }
  let before = 0;
  let i = 0;
  while (i < segs.length && before + segs[i]!.n <= page.offset) before += segs[i++]!.n;
  if (i === segs.length || page.limit <= 0) return { lo: 1, hi: 0, skip: 0 };
  let j = i;
  let upTo = before + segs[i]!.n;
  while (j + 1 < segs.length && upTo < page.offset + page.limit) upTo += segs[++j]!.n;
  return { lo: segs[i]!.lo, hi: segs[j]!.hi, skip: page.offset - before };
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
