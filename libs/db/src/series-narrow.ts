/**
 * Narrow buckets (under 64 steps, below the finest rollup) for series reads (docs/architecture.md, "The metric
 * store"). The range holds at most 64 × buckets points per series, in chunks and the row-per-point tail. The chunks
 * of every series are fetched in one query and aggregated here as numbers; Postgres aggregates the tail rows
 * itself and the two are merged here — no per-point row crosses the wire. The packed reader sends the merged
 * buckets' bytes; the JSON reader has Postgres write their float32 values (finding a float32's shortest decimal
 * costs more in JS than decoding and aggregating the points).
 */
import type { Pool, PoolClient } from 'pg';
import { chunksIn, type ChunkPart } from './metric-chunks';
import { withSnapshot } from './touch';
import { readSummary, SUMMARY_WIDTH, type SubBucket } from './metric-summary';
import type { BucketSeries, JsonNumber } from './series';

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

/** A series' narrow bucket columns, chunks and tail merged; min/max NaN where the bucket holds only NaN. */
export interface Buckets {
  steps: ArrayLike<number>;
  count: ArrayLike<number>;
  nan: ArrayLike<number>;
  min: ArrayLike<number>;
  max: ArrayLike<number>;
  first: ArrayLike<number>;
  last: ArrayLike<number>;
}

// the tail's buckets of each series, aggregated by Postgres (a finished run's tail is usually empty); values as
// their bytes, so they read exactly whatever the server's extra_float_digits
const TAIL_BUCKETS_SQL = `
  SELECT p.i, floor(m.step::float8 / p.w)::int AS b, count(*)::int AS count,
         (count(*) FILTER (WHERE m.value = 'NaN'))::int AS nan,
         float8send(coalesce(min(m.value) FILTER (WHERE m.value <> 'NaN'), 'NaN')) AS min,
         float8send(coalesce(max(m.value) FILTER (WHERE m.value <> 'NaN'), 'NaN')) AS max,
         float8send((array_agg(m.value ORDER BY m.step))[1]) AS first,
         float8send((array_agg(m.value ORDER BY m.step DESC))[1]) AS last,
         min(m.step) AS fs, max(m.step) AS ls
  FROM unnest($1::int[], $2::bigint[], $3::int[], $4::int[], $5::int[], $6::int[]) AS p(i, num, key_id, w, lo, hi)
  JOIN metric_point m ON m.run_num = p.num AND m.key_id = p.key_id AND m.step BETWEEN p.lo AND p.hi
  GROUP BY 1, 2 ORDER BY 1, 2`;

interface TailRow {
  i: number;
  b: number;
  count: number;
  nan: number;
  min: number;
  max: number;
  first: number;
  last: number;
  fs: number;
  ls: number;
}
type TailBytes = Omit<TailRow, 'min' | 'max' | 'first' | 'last'> & Record<'min' | 'max' | 'first' | 'last', Buffer>;

/**
 * One series' chunk buckets (in bucket order) and tail buckets (in bucket order) as one column set: a bucket in
 * both (a late point, or where the tail begins) adds its counts, keeps the smaller min and larger max (NaN: none)
 * and the first and last of whichever side holds the earlier first and later last step.
 */
function mergeTail(f: Flat, tail: readonly TailRow[], w: number): Buckets {
  const out = { steps: [] as number[], count: [] as number[], nan: [] as number[], min: [] as number[] };
  const max: number[] = [];
  const first: number[] = [];
  const last: number[] = [];
  const push = (b: number, count: number, nan: number, mn: number, mx: number, fv: number, lv: number) => {
    out.steps.push(b * w);
    out.count.push(count);
    out.nan.push(nan);
    out.min.push(mn);
    max.push(mx);
    first.push(fv);
    last.push(lv);
  };
  const lower = (a: number, b: number) => (Number.isNaN(a) ? b : Number.isNaN(b) ? a : Math.min(a, b));
  const upper = (a: number, b: number) => (Number.isNaN(a) ? b : Number.isNaN(b) ? a : Math.max(a, b));
  let i = 0;
  let j = 0;
  while (i < f.b.length || j < tail.length) {
    const t = tail[j];
    const cb = i < f.b.length ? f.b[i]! : Infinity;
    const cmin = f.min[i] ?? NaN;
    const cmax = f.max[i] ?? NaN;
    if (!t || cb < t.b) {
      push(cb, f.count[i]!, f.nan[i]!, cmin, cmax, f.first[i]!, f.last[i]!);
      i++;
    } else if (t.b < cb) {
      push(t.b, t.count, t.nan, t.min, t.max, t.first, t.last);
      j++;
    } else {
      push(
        cb,
        f.count[i]! + t.count,
        f.nan[i]! + t.nan,
        lower(cmin, t.min),
        upper(cmax, t.max),
        f.fs[i]! < t.fs ? f.first[i]! : t.first,
        f.ls[i]! > t.ls ? f.last[i]! : t.last,
      );
      i++;
      j++;
    }
  }
  return { ...out, max, first, last };
}

/**
 * Narrow buckets of many series, chunks and tail merged (series with no point in range left out): each group's
 * chunks and tail read in one snapshot (a fold committing between the two reads would otherwise hide its points),
 * the chunks aggregated here, the tail by Postgres, the two merged by bucket here; then `fn` with the group's
 * connection.
 */
export async function mergedNarrow(
  pool: Pool,
  reads: readonly NarrowRead[],
  parallelism: number,
  fn: (c: PoolClient, merged: { r: NarrowRead; b: Buckets }[]) => Promise<void>,
): Promise<void> {
  if (!reads.length) return;
  await inGroups(pool, reads, parallelism, async (c, group, chunks) => {
    const tail = await c.query<TailBytes>(TAIL_BUCKETS_SQL, [
      group.map((r) => r.i),
      group.map((r) => r.num),
      group.map((r) => r.keyId),
      group.map((r) => r.w),
      group.map((r) => r.lo),
      group.map((r) => r.hi),
    ]);
    const tails = new Map<number, TailRow[]>();
    for (const row of tail.rows) {
      const [min, max, first, last] = [row.min, row.max, row.first, row.last].map((b) => b.readDoubleBE(0));
      const t: TailRow = { ...row, min: min!, max: max!, first: first!, last: last! };
      const list = tails.get(t.i);
      if (list) list.push(t);
      else tails.set(t.i, [t]);
    }
    const merged = group.flatMap((r, n) => {
      const f: Flat = { i: [], b: [], count: [], nan: [], min: [], max: [], first: [], last: [], fs: [], ls: [] };
      aggregateChunks(f, r, chunks[n]!);
      const b = mergeTail(f, tails.get(r.i) ?? [], r.w);
      return b.steps.length ? [{ r, b }] : [];
    });
    if (merged.length) await fn(c, merged);
  });
}

/** Bucket columns as the series JSON carries them. */
export type NarrowCols = Omit<BucketSeries, 'runId' | 'key' | 'mode' | 'width' | 'times'>;

/** A value as JSON carries it: non-finite values as their strings (what Postgres' to_json writes). */
export const jsonNumber = (v: number): JsonNumber =>
  Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : v;

/** What `f4` casts to float4: zero and magnitudes float32 holds as normals (the rest stay float64, exactly). */
const asFloat4 = (v: number) => v === 0 || (Math.abs(v) >= 1.2e-38 && Math.abs(v) <= 3.4e38);

/**
 * Narrow buckets of many series as the JSON carries them, values as `f4` writes them: Postgres formats every value
 * float32 holds, in one float4 array a group (float4's shortest decimal, which JSON.parse reads back), and the
 * rest are what they are (NaN, ±Infinity as their strings; min/max of a bucket of NaN only, null). Postgres used to
 * merge and format the whole series (JSON per value over the chunk buckets sent as float8 text): 28–30 ms of a
 * group of 10 series × 782 buckets, against a few for one array.
 */
export async function narrowBuckets(
  pool: Pool,
  reads: readonly NarrowRead[],
  parallelism: number,
): Promise<Map<number, NarrowCols>> {
  const out = new Map<number, NarrowCols>();
  await mergedNarrow(pool, reads, parallelism, async (c, merged) => {
    // every float32-held value of the group, in order (min, max, first, last of each series), as float32's exact
    // float64 text: float4's input reads it back to the same float32
    const texts: string[] = [];
    const cols = (b: Buckets) => [b.min, b.max, b.first, b.last];
    for (const { b } of merged)
      for (const col of cols(b))
        for (let j = 0; j < col.length; j++)
          if (asFloat4(col[j]!)) texts.push(Object.is(col[j], -0) ? '-0' : String(Math.fround(col[j]!)));
    const formatted = texts.length
      ? (JSON.parse(
          (await c.query<{ j: string }>('SELECT array_to_json($1::float4[])::text AS j', [`{${texts.join(',')}}`]))
            .rows[0]!.j,
        ) as number[])
      : [];
    let k = 0;
    const value = (v: number): JsonNumber => (asFloat4(v) ? formatted[k++]! : jsonNumber(v));
    const bound = (v: number): JsonNumber | null => (Number.isNaN(v) ? null : value(v));
    for (const { r, b } of merged) {
      const n = b.steps.length;
      const min = new Array<JsonNumber | null>(n);
      const max = new Array<JsonNumber | null>(n);
      const first = new Array<JsonNumber>(n);
      const last = new Array<JsonNumber>(n);
      // the order the texts were made in
      for (let j = 0; j < n; j++) min[j] = bound(b.min[j]!);
      for (let j = 0; j < n; j++) max[j] = bound(b.max[j]!);
      for (let j = 0; j < n; j++) first[j] = value(b.first[j]!);
      for (let j = 0; j < n; j++) last[j] = value(b.last[j]!);
      out.set(r.i, {
        steps: Array.from(b.steps),
        count: Array.from(b.count),
        nan: Array.from(b.nan),
        min,
        max,
        first,
        last,
      });
    }
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
