import type { Pool, PoolClient } from 'pg';

/** Rollup widths maintained at ingest (powers of two, so any power-of-two bucket width is an exact union). */
export const ROLLUP_WIDTHS = [64, 1024, 16384] as const;

export interface MetricPoint {
  key: string;
  step: number;
  value: number;
  /** Milliseconds since the epoch. */
  time?: number;
}

export interface InsertResult {
  /** Points stored by this call; a point already stored (same run, key, step) is skipped, not overwritten. */
  inserted: number;
  /** Points of the batch that were already stored (a retried batch) or repeated within it. */
  skipped: number;
  writeSeq: number;
}

export class RunNotFoundError extends Error {
  constructor(readonly runId: string) {
    super(`run ${runId} not found`);
  }
}

const INSERT_SQL = `
WITH input AS (
  SELECT * FROM unnest($2::text[], $3::int[], $4::float8[], $5::float8[]) AS t(key, step, value, ms)
), ins AS (
  INSERT INTO metric_point (run_id, key, step, value, wall_time)
  SELECT $1, key, step, value, CASE WHEN ms IS NULL THEN now() ELSE to_timestamp(ms / 1000.0) END FROM input
  ON CONFLICT DO NOTHING
  RETURNING key, step, value
), roll AS (
  INSERT INTO metric_rollup AS r (run_id, key, width, bucket, count, nan_count, min, max,
                                  first_step, first_value, last_step, last_value)
  SELECT $1, key, w.width, step / w.width, count(*), count(*) FILTER (WHERE value = 'NaN'),
         min(value) FILTER (WHERE value <> 'NaN'), max(value) FILTER (WHERE value <> 'NaN'),
         min(step), (array_agg(value ORDER BY step))[1], max(step), (array_agg(value ORDER BY step DESC))[1]
  FROM ins CROSS JOIN unnest($6::int[]) AS w(width)
  GROUP BY key, w.width, step / w.width
  ORDER BY key, w.width, step / w.width
  ON CONFLICT (run_id, key, width, bucket) DO UPDATE SET
    count = r.count + excluded.count,
    nan_count = r.nan_count + excluded.nan_count,
    min = LEAST(r.min, excluded.min),
    max = GREATEST(r.max, excluded.max),
    first_step = LEAST(r.first_step, excluded.first_step),
    first_value = CASE WHEN excluded.first_step < r.first_step THEN excluded.first_value ELSE r.first_value END,
    last_step = GREATEST(r.last_step, excluded.last_step),
    last_value = CASE WHEN excluded.last_step > r.last_step THEN excluded.last_value ELSE r.last_value END
  RETURNING 1
), keys AS (
  INSERT INTO run_metric AS m (run_id, key, count, min_step, last_step, last_value, updated_at)
  SELECT $1, key, count(*), min(step), max(step), (array_agg(value ORDER BY step DESC))[1], now()
  FROM ins GROUP BY key ORDER BY key
  ON CONFLICT (run_id, key) DO UPDATE SET
    count = m.count + excluded.count,
    min_step = LEAST(m.min_step, excluded.min_step),
    last_value = CASE WHEN excluded.last_step > m.last_step THEN excluded.last_value ELSE m.last_value END,
    last_step = GREATEST(m.last_step, excluded.last_step),
    updated_at = now()
  RETURNING 1
)
SELECT count(*)::int AS inserted FROM ins`;

/**
 * Stores a batch of points for one run, idempotently: (run, key, step) is unique, so a retried batch stores
 * each point once. One statement does the insert, the rollups and the per-key summary from the rows that
 * were actually inserted, so a retry never double-counts a rollup. The run row is locked first: writers of
 * one run are serialised (no deadlock between their rollup upserts), writers of different runs run in parallel.
 * Throws RunNotFoundError when the run does not exist or is outside `teamId`; then nothing is written.
 */
export async function insertMetricPoints(
  pool: Pool,
  runId: string,
  points: readonly MetricPoint[],
  opts: { teamId?: string } = {},
): Promise<InsertResult> {
  const n = points.length;
  const keys = new Array<string>(n);
  const steps = new Array<number>(n);
  const values = new Array<number>(n);
  const times = new Array<number | null>(n);
  for (let i = 0; i < n; i++) {
    const p = points[i]!;
    keys[i] = p.key;
    steps[i] = p.step;
    values[i] = p.value; // pg writes NaN/Infinity/-Infinity as the float8 literals Postgres reads back
    times[i] = p.time ?? null;
  }
  return withTransaction(pool, async (c) => {
    const writeSeq = await bumpWriteSeq(c, runId, opts.teamId);
    const res = await c.query<{ inserted: number }>(INSERT_SQL, [runId, keys, steps, values, times, ROLLUP_WIDTHS]);
    const inserted = res.rows[0]?.inserted ?? 0;
    await c.query('SELECT pg_notify($1, $2)', [RUN_CHANNEL, runId]);
    return { inserted, skipped: n - inserted, writeSeq };
  });
}

/** The Postgres NOTIFY channel on which every write to a run announces the run id. */
export const RUN_CHANNEL = 'aft_run_update';

/** Locks the run row for this transaction and bumps its write sequence; throws RunNotFoundError on a miss. */
export async function bumpWriteSeq(c: PoolClient, runId: string, teamId?: string): Promise<number> {
  const res = await c.query<{ write_seq: number }>(
    `UPDATE run SET write_seq = write_seq + 1, heartbeat_at = now(), updated_at = now()
     WHERE id = $1 AND ($2::text IS NULL OR project_id IN (SELECT id FROM project WHERE team_id = $2))
     RETURNING write_seq`,
    [runId, teamId ?? null],
  );
  const row = res.rows[0];
  if (!row) throw new RunNotFoundError(runId);
  return row.write_seq;
}

export async function withTransaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}
