/**
 * Series in binary columns (libs/contracts/src/packed-series.ts; docs/architecture.md, "The metric store"): the same
 * plans, buckets and points as querySeries (series.ts), sent as the values' bytes. No value is written as text:
 * rollups leave Postgres as float8send/int4send bytes joined per column, narrow buckets are aggregated here from the
 * decoded chunks and the tail's rows (their values as bytes too), raw points are the decoded columns. Only buckets
 * wider than the widest rollup (ranges of over 65 million steps) come through the JSON reader. At 20 series × 1,000
 * buckets Postgres does about a third of the work of building the JSON, and the server parses and writes no JSON
 * numbers.
 */
import type { Pool } from 'pg';
import { readPoints } from './metric-chunks';
import {
  bucketColumns,
  bucketTimes,
  narrowReads,
  planSeries,
  rollupParams,
  SERIES_QUERY_PARALLELISM,
  type BucketCols,
  type KeyStats,
  type SeriesRequest,
} from './series';
import { mergedNarrow, type Buckets, type NarrowRead } from './series-narrow';

/**
 * The wire form, as libs/contracts/src/packed-series.ts reads it (libs/db may not import contracts; a type test in
 * libs/api/test/procedures.test.ts holds the two equal): big-endian int32 steps and counts, float64 values and times,
 * each column base64; `n` points or buckets.
 */
export interface PackedRawSeries {
  runId: string;
  key: string;
  mode: 'raw';
  n: number;
  steps: string;
  values: string;
  times: string;
}

export interface PackedBucketSeries {
  runId: string;
  key: string;
  mode: 'buckets';
  width: number;
  n: number;
  steps: string;
  count: string;
  nan: string;
  min: string;
  max: string;
  first: string;
  last: string;
  times?: string;
}

export type PackedSeries = PackedRawSeries | PackedBucketSeries;

const int32Bytes = (a: ArrayLike<number>): Buffer => {
  const d = new DataView(new ArrayBuffer(a.length * 4));
  for (let i = 0; i < a.length; i++) d.setInt32(i * 4, a[i]!);
  return Buffer.from(d.buffer);
};
const ints = (a: ArrayLike<number>): string => int32Bytes(a).toString('base64');
/** A packed int32 column's numbers, from its bytes. */
const int32s = (b: Buffer): number[] => Array.from({ length: b.length / 4 }, (_, k) => b.readInt32BE(k * 4));
const floats = (a: ArrayLike<number>): string => {
  const d = new DataView(new ArrayBuffer(a.length * 8));
  for (let i = 0; i < a.length; i++) d.setFloat64(i * 8, a[i]!);
  return Buffer.from(d.buffer).toString('base64');
};

/** A series' packed bucket columns, its number of points (the sparse check reads it) and its steps' bytes. */
type Cols = Pick<PackedBucketSeries, 'n' | 'steps' | 'count' | 'nan' | 'min' | 'max' | 'first' | 'last'> & {
  points: number;
  stepBytes: Buffer;
};

function packCols(b: Buckets): Cols {
  let points = 0;
  for (let j = 0; j < b.count.length; j++) points += b.count[j]!;
  const stepBytes = int32Bytes(b.steps);
  return {
    n: b.steps.length,
    points,
    stepBytes,
    steps: stepBytes.toString('base64'),
    count: ints(b.count),
    nan: ints(b.nan),
    min: floats(b.min),
    max: floats(b.max),
    first: floats(b.first),
    last: floats(b.last),
  };
}

async function packRaw(pool: Pool, r: SeriesRequest, s: KeyStats | undefined, lo: number, hi: number) {
  const p = s ? await readPoints(pool, s.num, s.key_id, lo, hi) : null;
  const out: PackedRawSeries = {
    runId: r.runId,
    key: r.key,
    mode: 'raw',
    n: p?.steps.length ?? 0,
    steps: ints(p?.steps ?? []),
    values: floats(p?.values ?? []),
    times: floats(p?.times ?? []),
  };
  return out;
}

/** The same reads as querySeries (series.ts), in binary columns. */
export async function querySeriesPacked(pool: Pool, reqs: readonly SeriesRequest[]): Promise<PackedSeries[]> {
  if (reqs.length === 0) return [];
  const plans = await planSeries(pool, reqs);
  const rollup = plans.flatMap((p, i) => (p.kind === 'rollup' ? [{ i, p }] : []));
  const narrow = narrowReads(plans);
  const got = new Map<number, Cols>();
  const per = Math.max(1, Math.ceil(rollup.length / SERIES_QUERY_PARALLELISM));
  await Promise.all([
    packedNarrow(pool, narrow, got),
    ...Array.from({ length: Math.ceil(rollup.length / per) }, async (_, g) => {
      const part = rollup.slice(g * per, (g + 1) * per);
      const res = await pool.query<RollupRow>(ROLLUP_PACKED_SQL, rollupParams(part));
      const b64 = (b: Buffer) => b.toString('base64');
      for (const { i, n, points, steps, count, nan, min, max, first, last } of res.rows) {
        if (n > 0) {
          got.set(i, {
            n,
            points: Number(points),
            stepBytes: steps,
            steps: b64(steps),
            count: b64(count),
            nan: b64(nan),
            min: b64(min),
            max: b64(max),
            first: b64(first),
            last: b64(last),
          });
        }
      }
    }),
  ]);
  return Promise.all(
    plans.map(async (p, i): Promise<PackedSeries> => {
      const r = reqs[i]!;
      if (p.kind === 'empty') return packRaw(pool, r, undefined, 0, -1);
      if (p.kind === 'raw') return packRaw(pool, r, p.s, p.lo, p.hi);
      const { points, stepBytes, ...cols } =
        got.get(i) ?? packCols(fromJson(await bucketColumns(pool, p.s, p.width, p.lo, p.hi)));
      // sparse points: fewer than the budget in the whole range, so send them as they are (as querySeries does)
      if (points <= r.buckets) return packRaw(pool, r, p.s, p.lo, p.hi);
      const times = r.withTimes ? await bucketTimes(pool, p.s, p.width, p.lo, p.hi, int32s(stepBytes)) : undefined;
      return {
        runId: r.runId,
        key: r.key,
        mode: 'buckets',
        width: p.width,
        ...cols,
        ...(times ? { times: floats(times) } : {}),
      };
    }),
  );
}

interface RollupRow {
  i: number;
  n: number;
  points: string;
  steps: Buffer;
  count: Buffer;
  nan: Buffer;
  min: Buffer;
  max: Buffer;
  first: Buffer;
  last: Buffer;
}

// one bytea per column, big-endian values end to end; the ordered subquery keeps each string_agg in bucket order
const ROLLUP_PACKED_SQL = `
  SELECT p.i, q.*
  FROM unnest($1::int[], $2::bigint[], $3::int[], $4::int[], $5::int[], $6::int[]) AS p(i, num, key_id, w, lo, hi)
  CROSS JOIN LATERAL (
    SELECT count(*)::int AS n, sum(count)::text AS points, string_agg(int4send(bucket * p.w), '') AS steps, string_agg(int4send(count), '') AS count,
           string_agg(int4send(nan_count), '') AS nan, string_agg(float8send(coalesce(min, 'NaN')), '') AS min,
           string_agg(float8send(coalesce(max, 'NaN')), '') AS max, string_agg(float8send(first_value), '') AS first,
           string_agg(float8send(last_value), '') AS last
    FROM (SELECT bucket, count, nan_count, min, max, first_value, last_value FROM metric_rollup m
          WHERE m.run_num = p.num AND m.key_id = p.key_id AND m.width = p.w AND m.bucket BETWEEN p.lo AND p.hi
          ORDER BY bucket) r) q`;

/** Columns from the JSON path's reader (widths past the widest rollup: ranges of over 65 million steps). */
function fromJson(c: BucketCols): Buckets {
  const num = (v: unknown) => (v === null ? NaN : typeof v === 'number' ? v : Number(v));
  return {
    steps: c.steps,
    count: c.count,
    nan: c.nan,
    min: c.min.map(num),
    max: c.max.map(num),
    first: c.first.map(num),
    last: c.last.map(num),
  };
}

/** Narrow buckets (under the finest rollup) of many series into `got` (series-narrow.ts merges chunks and tail). */
async function packedNarrow(pool: Pool, reads: readonly NarrowRead[], got: Map<number, Cols>): Promise<void> {
  await mergedNarrow(pool, reads, SERIES_QUERY_PARALLELISM, async (_c, merged) => {
    for (const { r, b } of merged) got.set(r.i, packCols(b));
  });
}
