/**
 * Narrow buckets (under 64 steps, below the finest rollup) for series reads (docs/architecture.md, "The metric
 * store"). The range holds at most 64 × buckets points per series, in chunks and the row-per-point tail. The chunks
 * of every series are fetched in one query and aggregated here as numbers; Postgres aggregates the tail rows
 * itself, merges the two and formats the JSON — no per-point row crosses the wire, and no float is formatted in JS
 * (finding a float32's shortest decimal costs more in JS than decoding and aggregating the points).
 */
import type { Pool, PoolClient } from 'pg';
import { chunksIn, floatArray, type ChunkPart } from './metric-chunks';
import { withSnapshot } from './touch';
import { readSummary, SUMMARY_WIDTH, type SubBucket } from './metric-summary';
import type { BucketSeries } from './series';

/** A float8 column as JSON at float32 precision where float32 can hold it (NaN, ±Infinity, huge and tiny stay exact). */
export const f4 = (col: string) =>
  `CASE WHEN ${col} = 0 OR abs(${col}) BETWEEN 1.2e-38 AND 3.4e38 THEN to_json(${col}::float4) ELSE to_json(${col}) END`;

/** One series' narrow read: `i` is its index in the request; [lo, hi] is widened to whole buckets of `w`. */
export interface NarrowRead {
  i: number;
  num: string;
  keyId: number;
  w: number;
  lo: number;
  hi: number;
}

/** Per-bucket aggregates of chunk points, in flat columns over many series (`i`: the series). */
export interface Flat {
  i: number[];
  b: number[];
  count: number[];
  nan: number[];
  min: (number | null)[];
  max: (number | null)[];
  first: number[];
  last: number[];
  fs: number[];
  ls: number[];
}

/**
 * Appends to `out` the buckets of width `w` (bucket = floor(step / w), as the rollups count) of the chunk points
 * with lo ≤ step ≤ hi: from a chunk's summary when it has one (w a multiple of its sub-bucket width), else from
 * its decoded points.
 */
export function aggregateChunks(out: Flat, r: NarrowRead, chunks: readonly ChunkPart[]): void {
  let bucket: number | null = null;
  let k = out.b.length - 1;
  /** Starts bucket `b` at its first point (step `fs`, value `first`) unless it is the open one; returns its index. */
  const at = (b: number, fs: number, first: number) => {
    if (b === bucket) return k;
    bucket = b;
    out.i.push(r.i);
    out.b.push(b);
    out.count.push(0);
    out.nan.push(0);
    out.min.push(null);
    out.max.push(null);
    out.first.push(first);
    out.fs.push(fs);
    return ++k;
  };
  const add = (s: SubBucket) => {
    const i = at(Math.floor(s.fs / r.w), s.fs, s.first);
    out.count[i]! += s.count;
    out.nan[i]! += s.nan;
    out.last[i] = s.last;
    out.ls[i] = s.ls;
    if (s.min !== null && (out.min[i] === null || s.min < out.min[i]!)) out.min[i] = s.min;
    if (s.max !== null && (out.max[i] === null || s.max > out.max[i]!)) out.max[i] = s.max;
  };
  for (const c of chunks) {
    if (c.summary) {
      readSummary(c.summary, c.firstStep, r.lo, r.hi, add);
      continue;
    }
    // points one by one, with no object per point: a zoom decodes up to 64 × buckets of them per series
    const { steps, values } = c.points!;
    for (let j = 0; j < steps.length; j++) {
      const s = steps[j]!;
      if (s < r.lo || s > r.hi) continue;
      const v = values[j]!;
      const i = at(Math.floor(s / r.w), s, v);
      out.count[i]!++;
      out.last[i] = v;
      out.ls[i] = s;
      if (Number.isNaN(v)) out.nan[i]!++;
      else {
        if (out.min[i] === null || v < out.min[i]!) out.min[i] = v;
        if (out.max[i] === null || v > out.max[i]!) out.max[i] = v;
      }
    }
  }
}

const intArray = (a: readonly number[]) => `{${a.join(',')}}`;

// c: chunk buckets from here; t: tail buckets. A bucket in both (a late point, or where the tail begins) merges;
// LEAST/GREATEST skip NULL (an all-NaN side). Usually t is empty for a finished run and c for a fresh one.
const NARROW_SQL = `
  WITH p AS MATERIALIZED (
    SELECT * FROM unnest($1::int[], $2::bigint[], $3::int[], $4::int[], $5::int[], $6::int[]) AS p(i, num, key_id, w, lo, hi)),
  c AS MATERIALIZED (
    SELECT * FROM unnest($7::int[], $8::int[], $9::int[], $10::int[], $11::float8[], $12::float8[], $13::float8[],
                         $14::float8[], $15::int[], $16::int[]) AS c(i, b, count, nan, min, max, first, last, fs, ls)),
  t AS MATERIALIZED (
    SELECT p.i, floor(m.step::float8 / p.w)::int AS b, count(*)::int AS count, (count(*) FILTER (WHERE m.value = 'NaN'))::int AS nan,
           min(m.value) FILTER (WHERE m.value <> 'NaN') AS min, max(m.value) FILTER (WHERE m.value <> 'NaN') AS max,
           (array_agg(m.value ORDER BY m.step))[1] AS first, (array_agg(m.value ORDER BY m.step DESC))[1] AS last,
           min(m.step) AS fs, max(m.step) AS ls
    FROM p JOIN metric_point m ON m.run_num = p.num AND m.key_id = p.key_id AND m.step BETWEEN p.lo AND p.hi
    GROUP BY 1, 2),
  u AS MATERIALIZED (
    SELECT i, b, count, nan, min, max, first, last FROM c
    WHERE NOT EXISTS (SELECT 1 FROM t WHERE t.i = c.i AND t.b = c.b)
    UNION ALL
    SELECT i, b, count, nan, min, max, first, last FROM t
    WHERE NOT EXISTS (SELECT 1 FROM c WHERE c.i = t.i AND c.b = t.b)
    UNION ALL
    SELECT i, b, c.count + t.count, c.nan + t.nan, LEAST(c.min, t.min), GREATEST(c.max, t.max),
           CASE WHEN c.fs < t.fs THEN c.first ELSE t.first END, CASE WHEN c.ls > t.ls THEN c.last ELSE t.last END
    FROM c JOIN t USING (i, b))
  -- json_agg over an ordered subquery keeps its order: one sort for all the series, not one per column; grouped,
  -- not a subquery per series (which scanned every series' buckets for each: a third of the statement's time)
  SELECT q.i, json_build_object('steps', json_agg(s), 'count', json_agg(count), 'nan', json_agg(nan),
                                'min', json_agg(${f4('min')}), 'max', json_agg(${f4('max')}),
                                'first', json_agg(${f4('first')}), 'last', json_agg(${f4('last')}))::text AS j
  FROM (SELECT u.i, u.b * p.w AS s, count, nan, min, max, first, last FROM u JOIN p USING (i) ORDER BY u.i, u.b) q
  GROUP BY q.i`;

/** NARROW_SQL's tail side for one series with no chunk in range: the aggregate and JSON in one pass. */
const TAIL_SQL = `
  SELECT json_build_object(
    'steps', json_agg(b * $3::int ORDER BY b), 'count', json_agg(count ORDER BY b), 'nan', json_agg(nan ORDER BY b),
    'min', json_agg(${f4('min')} ORDER BY b), 'max', json_agg(${f4('max')} ORDER BY b),
    'first', json_agg(${f4('first')} ORDER BY b), 'last', json_agg(${f4('last')} ORDER BY b))::text AS j
  FROM (SELECT floor(step::float8 / $3::int)::int AS b, count(*) AS count, count(*) FILTER (WHERE value = 'NaN') AS nan,
               min(value) FILTER (WHERE value <> 'NaN') AS min, max(value) FILTER (WHERE value <> 'NaN') AS max,
               (array_agg(value ORDER BY step))[1] AS first, (array_agg(value ORDER BY step DESC))[1] AS last
        FROM metric_point WHERE run_num = $1 AND key_id = $2 AND step BETWEEN $4 AND $5 GROUP BY 1) q`;

/** Bucket columns as the series JSON carries them. */
export type NarrowCols = Omit<BucketSeries, 'runId' | 'key' | 'mode' | 'width' | 'times'>;

/**
 * Narrow buckets of many series: one query for their chunks, then `parallelism` concurrent queries (a few series
 * each) that aggregate the tail, merge and format. Series with no point in range are absent from the result.
 */
export async function narrowBuckets(
  pool: Pool,
  reads: readonly NarrowRead[],
  parallelism: number,
): Promise<Map<number, NarrowCols>> {
  const out = new Map<number, NarrowCols>();
  if (!reads.length) return out;
  const keep = (i: number, j: string | null) => {
    const cols = JSON.parse(j ?? 'null') as NarrowCols | null;
    if (cols?.steps) out.set(i, cols);
  };
  await inGroups(pool, reads, parallelism, async (c, group, chunks) => {
    // a series without chunks in range (a live run's recent steps): its own query over the tail
    for (const [n, r] of group.entries())
      if (!chunks[n]!.length) {
        const res = await c.query<{ j: string | null }>(TAIL_SQL, [r.num, r.keyId, r.w, r.lo, r.hi]);
        keep(r.i, res.rows[0]?.j ?? null);
      }
    const part = group.flatMap((r, n) => (chunks[n]!.length ? [{ r, chunks: chunks[n]! }] : []));
    if (!part.length) return;
    const f: Flat = { i: [], b: [], count: [], nan: [], min: [], max: [], first: [], last: [], fs: [], ls: [] };
    for (const x of part) aggregateChunks(f, x.r, x.chunks);
    const res = await c.query<{ i: number; j: string | null }>(NARROW_SQL, [
      part.map((x) => x.r.i),
      part.map((x) => x.r.num),
      part.map((x) => x.r.keyId),
      part.map((x) => x.r.w),
      part.map((x) => x.r.lo),
      part.map((x) => x.r.hi),
      intArray(f.i),
      intArray(f.b),
      intArray(f.count),
      intArray(f.nan),
      floatArray(f.min),
      floatArray(f.max),
      floatArray(f.first),
      floatArray(f.last),
      intArray(f.fs),
      intArray(f.ls),
    ]);
    for (const row of res.rows) keep(row.i, row.j);
  });
  return out;
}

/**
 * Runs `fn` over `reads` in groups of a few series, `parallelism` groups at once (one group's chunks decode here
 * while Postgres works on another's), each group in one snapshot with its chunks fetched in one query: its tail read
 * in the same snapshot, a fold committing between the two reads cannot hide its points.
 */
export async function inGroups(
  pool: Pool,
  reads: readonly NarrowRead[],
  parallelism: number,
  fn: (c: PoolClient, group: readonly NarrowRead[], chunks: ChunkPart[][]) => Promise<void>,
): Promise<void> {
  const per = Math.max(1, Math.ceil(reads.length / parallelism));
  await Promise.all(
    Array.from({ length: Math.ceil(reads.length / per) }, (_, g) =>
      withSnapshot(pool, async (c) => {
        const group = reads.slice(g * per, (g + 1) * per);
        const chunks = await chunksIn(
          c,
          group.map((r) => ({ runNum: r.num, keyId: r.keyId, lo: r.lo, hi: r.hi, summary: r.w % SUMMARY_WIDTH === 0 })),
        );
        await fn(c, group, chunks);
      }),
    ),
  );
}
