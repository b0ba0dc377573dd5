import type { Pool } from 'pg';
import { ROLLUP_WIDTHS } from './metrics';

export interface SeriesRequest {
  runId: string;
  key: string;
  /** Most buckets (or raw points) to return. */
  buckets: number;
  minStep?: number;
  maxStep?: number;
}

export interface RawPoint {
  step: number;
  value: number;
  /** Milliseconds since the epoch. */
  time: number;
}

/** One bucket of `width` steps starting at `step`; min/max skip NaN, which `nan` counts. */
export interface Bucket {
  step: number;
  count: number;
  nan: number;
  min: number | null;
  max: number | null;
  first: number;
  last: number;
}

export type Series =
  | { runId: string; key: string; mode: 'raw'; points: RawPoint[] }
  | { runId: string; key: string; mode: 'buckets'; width: number; buckets: Bucket[] };

interface KeyStats {
  run_id: string;
  key: string;
  num: string;
  key_id: number;
  count: number;
  min_step: number;
  last_step: number;
}

/**
 * Bucket width for a step range: the smallest power of two that covers [lo, hi] in at most n aligned buckets.
 * Aligned power-of-two buckets are exact unions of the ingest rollups, so min/max/count are exact, not estimates.
 */
export function bucketWidth(lo: number, hi: number, n: number): number {
  let w = 1;
  while (Math.ceil((hi - lo + 1) / w) > n) w *= 2;
  while (Math.floor(hi / w) - Math.floor(lo / w) + 1 > n) w *= 2;
  return w;
}

/**
 * Downsampled series for many (run, key) pairs. Returns raw points when the range holds at most `buckets`
 * points; otherwise for each bucket min, max, first, last and count, so a one-point spike always survives.
 * A bucketed range is widened to whole buckets. Runs the per-series queries concurrently over the pool.
 */
export async function querySeries(pool: Pool, reqs: readonly SeriesRequest[]): Promise<Series[]> {
  if (reqs.length === 0) return [];
  const stats = await pool.query<KeyStats>(
    `SELECT m.run_id, m.key, r.num::text AS num, m.key_id, m.count, m.min_step, m.last_step
     FROM run_metric m JOIN run r ON r.id = m.run_id
     WHERE (m.run_id, m.key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [reqs.map((r) => r.runId), reqs.map((r) => r.key)],
  );
  const byId = new Map(stats.rows.map((s) => [`${s.run_id}\u0000${s.key}`, s]));
  return Promise.all(reqs.map((r) => oneSeries(pool, r, byId.get(`${r.runId}\u0000${r.key}`))));
}

async function oneSeries(pool: Pool, r: SeriesRequest, s: KeyStats | undefined): Promise<Series> {
  const empty: Series = { runId: r.runId, key: r.key, mode: 'raw', points: [] };
  if (!s) return empty;
  const lo = Math.max(r.minStep ?? s.min_step, s.min_step);
  const hi = Math.min(r.maxStep ?? s.last_step, s.last_step);
  if (lo > hi) return empty;
  const whole = lo === s.min_step && hi === s.last_step;
  if ((whole && s.count <= r.buckets) || hi - lo + 1 <= r.buckets) {
    return { ...empty, points: await rawPoints(pool, s, lo, hi) };
  }
  const width = bucketWidth(lo, hi, r.buckets);
  const buckets = await bucketed(pool, s, width, lo, hi);
  const total = buckets.reduce((a, b) => a + b.count, 0);
  if (total <= r.buckets) return { ...empty, points: await rawPoints(pool, s, lo, hi) };
  return { runId: r.runId, key: r.key, mode: 'buckets', width, buckets };
}

async function rawPoints(pool: Pool, s: KeyStats, lo: number, hi: number): Promise<RawPoint[]> {
  const res = await pool.query<{ step: number; value: number; time: number }>(
    `SELECT step, value, (extract(epoch FROM wall_time) * 1000)::float8 AS time FROM metric_point
     WHERE run_num = $1 AND key_id = $2 AND step BETWEEN $3 AND $4 ORDER BY step`,
    [s.num, s.key_id, lo, hi],
  );
  return res.rows;
}

const BUCKET_COLUMNS = `count::int AS count, nan::int AS nan, min, max, first, last`;

async function bucketed(pool: Pool, s: KeyStats, w: number, lo: number, hi: number): Promise<Bucket[]> {
  const first = Math.floor(lo / w);
  const last = Math.floor(hi / w);
  const level = [...ROLLUP_WIDTHS].reverse().find((l) => l <= w);
  if (level === undefined) {
    const res = await pool.query<Bucket>(
      `SELECT b * $3::int AS step, ${BUCKET_COLUMNS} FROM (
         SELECT step / $3::int AS b, count(*) AS count, count(*) FILTER (WHERE value = 'NaN') AS nan,
                min(value) FILTER (WHERE value <> 'NaN') AS min, max(value) FILTER (WHERE value <> 'NaN') AS max,
                (array_agg(value ORDER BY step))[1] AS first, (array_agg(value ORDER BY step DESC))[1] AS last
         FROM metric_point WHERE run_num = $1 AND key_id = $2 AND step BETWEEN $4 AND $5
         GROUP BY 1) q ORDER BY b`,
      [s.num, s.key_id, w, first * w, last * w + w - 1],
    );
    return res.rows;
  }
  const per = w / level;
  const res = await pool.query<Bucket>(
    `SELECT b * $3::int AS step, ${BUCKET_COLUMNS} FROM (
       SELECT bucket / $4::int AS b, sum(count) AS count, sum(nan_count) AS nan, min(min) AS min, max(max) AS max,
              (array_agg(first_value ORDER BY first_step))[1] AS first,
              (array_agg(last_value ORDER BY last_step DESC))[1] AS last
       FROM metric_rollup
       WHERE run_num = $1 AND key_id = $2 AND width = $5 AND bucket BETWEEN $6 AND $7
       GROUP BY 1) q ORDER BY b`,
    [s.num, s.key_id, w, per, level, first * per, last * per + per - 1],
  );
  return res.rows;
}
