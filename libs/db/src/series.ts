import { availableParallelism } from 'node:os';
import type { Pool } from 'pg';
import { readPoints } from './metric-chunks';
import { ROLLUP_WIDTHS } from './metrics';
import { f4, jsonNumber, narrowBuckets, type NarrowRead } from './series-narrow';

export interface SeriesRequest {
  runId: string;
  key: string;
  /** Most buckets (or raw points) to return. */
  buckets: number;
  minStep?: number | undefined;
  maxStep?: number | undefined;
  /** Also each bucket's wall time (of its last point), for a wall-clock x-axis; costs a scan of the points. */
  withTimes?: boolean | undefined;
}

/** A JSON-safe number: NaN and ±Infinity travel as strings, exactly as Postgres' to_json writes them. */
export type JsonNumber = number | 'NaN' | 'Infinity' | '-Infinity';

/** Raw points, in columns. `times` are milliseconds since the epoch. */
export interface RawSeries {
  runId: string;
  key: string;
  mode: 'raw';
  steps: number[];
  values: JsonNumber[];
  times: number[];
}

/**
 * Buckets of `width` steps, in columns: bucket i covers [steps[i], steps[i] + width). min/max skip NaN (null when a
 * bucket holds only NaN); nan counts them; first/last are the values at the bucket's first and last logged step.
 * Bucket values are for drawing and are sent at float32 precision (about 7 significant digits — a third fewer
 * bytes than float64, and no metric a chart can show loses anything); raw points are exact.
 */
export interface BucketSeries {
  runId: string;
  key: string;
  mode: 'buckets';
  width: number;
  steps: number[];
  count: number[];
  nan: number[];
  min: (JsonNumber | null)[];
  max: (JsonNumber | null)[];
  first: JsonNumber[];
  last: JsonNumber[];
  /** With `withTimes`: each bucket's last point's wall time, ms since the epoch. */
  times?: number[];
}

export type Series = RawSeries | BucketSeries;

export interface KeyStats {
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
 * Aligned power-of-two buckets are exactly the ingest rollups, so min/max/count are exact, not estimates.
 */
export function bucketWidth(lo: number, hi: number, n: number): number {
  let w = 1;
  while (Math.ceil((hi - lo + 1) / w) > n) w *= 2;
  while (Math.floor(hi / w) - Math.floor(lo / w) + 1 > n) w *= 2;
  return w;
}

/**
 * The parameters of a batch of rollup reads (ROLLUP_BATCH_SQL here, ROLLUP_PACKED_SQL in series-packed.ts): each
 * series' index in the request, run, key, width and first and last bucket.
 */
export function rollupParams(part: readonly { i: number; p: Extract<Plan, { kind: 'rollup' | 'aggregate' }> }[]) {
  return [
    part.map((d) => d.i),
    part.map((d) => d.p.s.num),
    part.map((d) => d.p.s.key_id),
    part.map((d) => d.p.width),
    part.map((d) => Math.floor(d.p.lo / d.p.width)),
    part.map((d) => Math.floor(d.p.hi / d.p.width)),
  ];
}

/**
 * Downsampled series for many (run, key) pairs. Returns raw points when the range holds at most `buckets`
 * points; otherwise for each bucket min, max, first, last and count, so a one-point spike always survives.
 * A bucketed range is widened to whole buckets. Postgres builds each series' JSON columns itself (one text value
 * per series, parsed natively), and the per-series queries run concurrently over the pool.
 */
export async function querySeries(pool: Pool, reqs: readonly SeriesRequest[]): Promise<Series[]> {
  if (reqs.length === 0) return [];
  const plans = await planSeries(pool, reqs);
  // Buckets that are exactly a rollup width — the usual case — are read a few series per query: a handful of
  // concurrent queries keeps every core busy without a round trip per series.
  const direct = plans.flatMap((p, i) => (p.kind === 'rollup' ? [{ i, p }] : []));
  const directCols = new Map<number, BucketCols>();
  const chunk = Math.max(1, Math.ceil(direct.length / SERIES_QUERY_PARALLELISM));
  // buckets under the finest rollup (a zoom, or a short run) come from the points, also a few series per query
  const narrow = narrowReads(plans);
  const [narrowCols] = await Promise.all([
    narrowBuckets(pool, narrow, SERIES_QUERY_PARALLELISM),
    ...Array.from({ length: Math.ceil(direct.length / chunk) }, async (_, c) => {
      const part = direct.slice(c * chunk, (c + 1) * chunk);
      const res = await pool.query<{ i: number; j: string | null }>(ROLLUP_BATCH_SQL, rollupParams(part));
      for (const row of res.rows) {
        const cols = JSON.parse(row.j ?? 'null') as BucketCols | null;
        if (cols?.steps) directCols.set(row.i, cols);
      }
    }),
  ]);
  return Promise.all(
    plans.map(async (p, i): Promise<Series> => {
      const r = reqs[i]!;
      const raw = async (lo: number, hi: number): Promise<RawSeries> => ({
        runId: r.runId,
        key: r.key,
        mode: 'raw',
        ...(p.s ? await rawColumns(pool, p.s, lo, hi) : { steps: [], values: [], times: [] }),
      });
      if (p.kind === 'empty') return raw(0, -1);
      if (p.kind === 'raw') return raw(p.lo, p.hi);
      const cols = directCols.get(i) ?? narrowCols.get(i) ?? (await bucketColumns(pool, p.s, p.width, p.lo, p.hi));
      // sparse points: fewer than the budget in the whole range, so send them as they are
      if (cols.count.reduce((a, b) => a + b, 0) <= r.buckets) return raw(p.lo, p.hi);
      const times = r.withTimes ? await bucketTimes(pool, p.s, p.width, p.lo, p.hi, cols.steps) : undefined;
      return { runId: r.runId, key: r.key, mode: 'buckets', width: p.width, ...cols, ...(times ? { times } : {}) };
    }),
  );
}

/**
 * How many queries one series read runs at once: one per core of this process's machine (a database on a bigger
 * one is not counted), up to 4. More than the cores only adds queueing: on the 2-core machine, 4 at once took p50
 * 16.9 / p95 25.8 ms for 20 series of a million points, 2 at once 14.5 / 20.4 (in-process, packed).
 */
export const SERIES_QUERY_PARALLELISM = Math.min(4, Math.max(1, availableParallelism()));

// The aggregates read an index-ordered subquery: one ordered scan instead of a sort per column (2× faster).
// A plain aggregate over an ordered subquery with no join or grouping keeps that order; the tests check it.
const ROLLUP_BATCH_SQL = `
  SELECT p.i, (SELECT json_build_object('steps', json_agg(b), 'count', json_agg(count), 'nan', json_agg(nan_count),
                        'min', json_agg(${f4('min')}), 'max', json_agg(${f4('max')}),
                        'first', json_agg(${f4('first_value')}), 'last', json_agg(${f4('last_value')}))::text
               FROM (SELECT bucket * p.w AS b, count, nan_count, min, max, first_value, last_value
                     FROM metric_rollup m
                     WHERE m.run_num = p.num AND m.key_id = p.key_id AND m.width = p.w
                       AND m.bucket BETWEEN p.lo AND p.hi
                     ORDER BY bucket) q) AS j
  FROM unnest($1::int[], $2::bigint[], $3::int[], $4::int[], $5::int[], $6::int[]) AS p(i, num, key_id, w, lo, hi)`;

export type Plan =
  | { kind: 'empty'; s: undefined }
  | { kind: 'raw'; s: KeyStats; lo: number; hi: number }
  | { kind: 'rollup' | 'aggregate'; s: KeyStats; lo: number; hi: number; width: number };

function plan(r: SeriesRequest, s: KeyStats | undefined): Plan {
  if (!s) return { kind: 'empty', s };
  const lo = Math.max(r.minStep ?? s.min_step, s.min_step);
  const hi = Math.min(r.maxStep ?? s.last_step, s.last_step);
  if (lo > hi) return { kind: 'empty', s: undefined };
  const whole = lo === s.min_step && hi === s.last_step;
  if ((whole && s.count <= r.buckets) || hi - lo + 1 <= r.buckets) return { kind: 'raw', s, lo, hi };
  const width = bucketWidth(lo, hi, r.buckets);
  const kind = (ROLLUP_WIDTHS as readonly number[]).includes(width) ? 'rollup' : 'aggregate';
  return { kind, s, lo, hi, width };
}

/** The plans whose buckets are under the finest rollup (a zoom, or a short run), each widened to whole buckets. */
export function narrowReads(plans: readonly Plan[]): NarrowRead[] {
  return plans.flatMap((p, i) =>
    p.kind === 'aggregate' && p.width < ROLLUP_WIDTHS[0]
      ? [
          {
            i,
            num: p.s.num,
            keyId: p.s.key_id,
            w: p.width,
            lo: Math.floor(p.lo / p.width) * p.width,
            hi: Math.floor(p.hi / p.width) * p.width + p.width - 1,
          },
        ]
      : [],
  );
}

/** Each request's plan: its key's stats, and raw points, a rollup read or an aggregate (series-packed.ts too). */
export async function planSeries(pool: Pool, reqs: readonly SeriesRequest[]): Promise<Plan[]> {
  const stats = await pool.query<KeyStats>(
    `SELECT m.run_id, m.key, r.num::text AS num, m.key_id, m.count, m.min_step, m.last_step
     FROM run_metric m JOIN run r ON r.id = m.run_id
     WHERE (m.run_id, m.key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [reqs.map((r) => r.runId), reqs.map((r) => r.key)],
  );
  const byId = new Map(stats.rows.map((s) => [`${s.run_id}\u0000${s.key}`, s]));
  return reqs.map((r) => plan(r, byId.get(`${r.runId}\u0000${r.key}`)));
}

async function jsonRow<T>(pool: Pool, sql: string, params: unknown[]): Promise<T> {
  const res = await pool.query<{ j: string | null }>(sql, params);
  return JSON.parse(res.rows[0]?.j ?? 'null') as T;
}

/** Raw points of [lo, hi], exact: the chunks the range needs are decoded and merged with the tail. */
async function rawColumns(pool: Pool, s: KeyStats, lo: number, hi: number) {
  const p = await readPoints(pool, s.num, s.key_id, lo, hi);
  return { steps: p.steps, values: p.values.map(jsonNumber), times: p.times };
}

/**
 * The wall time of the last point of each bucket that starts at `starts` (the buckets the counts came in). Read in
 * a statement of its own: a point logged meanwhile may open a bucket the counts do not have, which is left out, so
 * the times always line up with the buckets (a bucket never loses its points, so none is missing).
 */
export async function bucketTimes(
  pool: Pool,
  s: KeyStats,
  w: number,
  lo: number,
  hi: number,
  starts: ArrayLike<number>,
): Promise<number[]> {
  const p = await readPoints(pool, s.num, s.key_id, Math.floor(lo / w) * w, (Math.floor(hi / w) + 1) * w - 1);
  const last = new Map<number, number>();
  for (let i = 0; i < p.steps.length; i++) {
    const b = Math.floor(p.steps[i]! / w) * w;
    last.set(b, Math.max(last.get(b) ?? -Infinity, p.times[i]!));
  }
  return Array.from(starts, (b) => last.get(b) ?? NaN);
}

const BUCKET_JSON = `json_build_object(
  'steps', json_agg(b * $3::int ORDER BY b), 'count', json_agg(count ORDER BY b), 'nan', json_agg(nan ORDER BY b),
  'min', json_agg(${f4('min')} ORDER BY b), 'max', json_agg(${f4('max')} ORDER BY b),
  'first', json_agg(${f4('first')} ORDER BY b), 'last', json_agg(${f4('last')} ORDER BY b))::text AS j`;

export type BucketCols = Omit<BucketSeries, 'runId' | 'key' | 'mode' | 'width'>;

/**
 * Buckets of width `w` over [lo, hi] when `w` is not a rollup width (those are read in one batch by querySeries):
 * narrower buckets aggregate the raw points, wider ones merge 65,536-step rollups.
 */
export async function bucketColumns(pool: Pool, s: KeyStats, w: number, lo: number, hi: number): Promise<BucketCols> {
  const first = Math.floor(lo / w);
  const last = Math.floor(hi / w);
  const level = [...ROLLUP_WIDTHS].reverse().find((l) => l <= w);
  let source: string;
  let params: unknown[];
  if (level === undefined) {
    const got = await narrowBuckets(
      pool,
      [{ i: 0, num: s.num, keyId: s.key_id, w, lo: first * w, hi: last * w + w - 1 }],
      1,
    );
    return got.get(0) ?? { steps: [], count: [], nan: [], min: [], max: [], first: [], last: [] };
  } else {
    const per = w / level;
    source = `SELECT floor(bucket::float8 / $6::int)::int AS b, sum(count) AS count, sum(nan_count) AS nan, min(min) AS min, max(max) AS max,
                     (array_agg(first_value ORDER BY first_step))[1] AS first,
                     (array_agg(last_value ORDER BY last_step DESC))[1] AS last
              FROM metric_rollup WHERE run_num = $1 AND key_id = $2 AND width = $7 AND bucket BETWEEN $4 AND $5
              GROUP BY 1`;
    params = [s.num, s.key_id, w, first * per, last * per + per - 1, per, level];
  }
  const cols = await jsonRow<BucketCols | null>(pool, `SELECT ${BUCKET_JSON} FROM (${source}) q`, params);
  return cols?.steps ? cols : { steps: [], count: [], nan: [], min: [], max: [], first: [], last: [] };
}
