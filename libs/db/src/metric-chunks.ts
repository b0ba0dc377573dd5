/**
 * Reading compressed chunks of metric points (docs/architecture.md, "The metric store"). A (run, key, step) lives
 * in exactly one place: a `metric_chunk` (about CHUNK_POINTS points, encoded by metric-codec.ts, with a summary by
 * metric-summary.ts) or the row-per-point tail `metric_point`. Chunks of one (run, key) cover disjoint step ranges,
 * so the chunks a step range needs are found with two index probes. A fold (metric-fold.ts) moves points from the
 * tail into chunks in one transaction, so every read here that needs both sees them in one snapshot: one
 * statement, or one REPEATABLE READ transaction — two statements could see a point in neither place.
 */
import type { Pool, PoolClient } from 'pg';
import { decodeChunk, type DecodedChunk } from './metric-codec';

type Queryable = Pick<Pool | PoolClient, 'query'>;

/** Points in step order, in columns; `times` in ms since the epoch. */
export interface PointCols {
  steps: number[];
  values: number[];
  times: number[];
}

interface ChunkRow {
  i: number;
  first_step: number;
  last_step: number;
  payload: Buffer;
}

// the end of each key's chunks: a batch step past it (the usual case) cannot be in a chunk
const CHUNK_END_SQL = `
  SELECT k.key_id, (SELECT last_step FROM metric_chunk WHERE run_num = $1 AND key_id = k.key_id
                    ORDER BY first_step DESC LIMIT 1) AS last_step
  FROM unnest($2::int[]) AS k(key_id)`;

// the chunks holding some of the steps (the last chunk starting at or before each, if it reaches it)
// a dense chunk (a step for every step of its range) holds them all: no payload needed (in bigint: a chunk's range
// can span all of int4)
const HOLDERS_SQL = `
  SELECT m.key_id, m.first_step, m.last_step,
         CASE WHEN m.count::bigint <> m.last_step::bigint - m.first_step + 1 THEN m.payload END AS payload
  FROM metric_chunk m JOIN (
    SELECT DISTINCT u.k, c.first_step FROM unnest($2::int[], $3::int[]) AS u(k, s)
    CROSS JOIN LATERAL (SELECT first_step, last_step FROM metric_chunk
                        WHERE run_num = $1 AND key_id = u.k AND first_step <= u.s
                        ORDER BY first_step DESC LIMIT 1) c
    WHERE c.last_step >= u.s) h ON m.run_num = $1 AND m.key_id = h.k AND m.first_step = h.first_step`;

/**
 * The (key id, step) pairs among the points (`keyIds`, `steps`) that are already folded into chunks: a batch
 * insert drops them (a late retry of a batch whose points were folded since), so a point is stored once across the
 * fold too. Only the chunks holding one of the steps are decoded — a batch of two steps far apart costs two chunks,
 * not all between.
 */
export async function foldedAmong(
  c: Queryable,
  runNum: string,
  /** Each point's key id and step (columns: a batch's 10,000 points are not made into objects to be looked at). */
  keyIds: readonly number[],
  steps: readonly number[],
): Promise<Set<string>> {
  const out = new Set<string>();
  const keys = [...new Set(keyIds)];
  if (!keys.length) return out;
  const ends = await c.query<{ key_id: number; last_step: number | null }>(CHUNK_END_SQL, [runNum, keys]);
  const end = new Map(ends.rows.map((r) => [r.key_id, r.last_step]));
  const inside: { keyId: number; step: number }[] = [];
  for (let i = 0; i < keyIds.length; i++) {
    const e = end.get(keyIds[i]!);
    if (e !== null && e !== undefined && steps[i]! <= e) inside.push({ keyId: keyIds[i]!, step: steps[i]! });
  }
  if (!inside.length) return out;
  const holders = await c.query<{ key_id: number; first_step: number; last_step: number; payload: Buffer | null }>(
    HOLDERS_SQL,
    [runNum, inside.map((p) => p.keyId), inside.map((p) => p.step)],
  );
  const wanted = new Set(inside.map((p) => `${p.keyId}:${p.step}`));
  const dense = new Map<number, { f: number; l: number }[]>();
  for (const row of holders.rows) {
    if (!row.payload) {
      const d = dense.get(row.key_id) ?? [];
      dense.set(row.key_id, d);
      d.push({ f: row.first_step, l: row.last_step });
      continue;
    }
    for (const s of decodeChunk(row.payload).steps) {
      const id = `${row.key_id}:${s}`;
      if (wanted.has(id)) out.add(id);
    }
  }
  for (const d of dense.values()) d.sort((x, y) => x.f - y.f);
  for (const p of inside) {
    const d = dense.get(p.keyId);
    if (!d) continue;
    let lo = 0;
    let hi = d.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (d[mid]!.f <= p.step) lo = mid;
      else hi = mid - 1;
    }
    if (d[lo]!.f <= p.step && p.step <= d[lo]!.l) out.add(`${p.keyId}:${p.step}`);
  }
  return out;
}

/** Merges two step-ordered point lists whose steps are disjoint. */
function mergeCols(a: PointCols, b: PointCols): PointCols {
  if (!b.steps.length) return a;
  if (!a.steps.length) return b;
  const out: PointCols = { steps: [], values: [], times: [] };
  let i = 0;
  let j = 0;
  while (i < a.steps.length || j < b.steps.length) {
    const fromA = j >= b.steps.length || (i < a.steps.length && a.steps[i]! <= b.steps[j]!);
    const src = fromA ? a : b;
    const k = fromA ? i++ : j++;
    out.steps.push(src.steps[k]!);
    out.values.push(src.values[k]!);
    out.times.push(src.times[k]!);
  }
  return out;
}

function decodeRange(rows: readonly ChunkRow[], lo: number, hi: number): PointCols {
  const out: PointCols = { steps: [], values: [], times: [] };
  for (const row of rows) {
    const d = decodeChunk(row.payload);
    for (let k = 0; k < d.steps.length; k++) {
      const s = d.steps[k]!;
      if (s < lo || s > hi) continue;
      out.steps.push(s);
      out.values.push(d.values[k]!);
      out.times.push(d.times[k]!);
    }
  }
  return out;
}

/**
 * For each (run, key, lo, hi), the chunks whose step range meets [lo, hi]: the last chunk starting before lo (it
 * may reach into the range) and those starting inside it — both index probes, since ranges are disjoint. A range
 * with `sum` takes the summary, not the payload.
 */
const OVERLAP_MANY_SQL = `
  SELECT u.i, c.first_step, CASE WHEN u.sum AND length(c.summary) > 0 THEN c.summary END AS summary,
         CASE WHEN NOT u.sum OR coalesce(length(c.summary), 0) = 0 THEN c.payload END AS payload
  FROM unnest($1::int[], $2::bigint[], $3::int[], $4::int[], $5::int[], $6::bool[]) AS u(i, num, k, lo, hi, sum)
  CROSS JOIN LATERAL (
    (SELECT first_step, last_step, summary, payload FROM metric_chunk
     WHERE run_num = u.num AND key_id = u.k AND first_step < u.lo ORDER BY first_step DESC LIMIT 1)
    UNION ALL
    (SELECT first_step, last_step, summary, payload FROM metric_chunk
     WHERE run_num = u.num AND key_id = u.k AND first_step BETWEEN u.lo AND u.hi)
  ) c
  WHERE c.last_step >= u.lo
  ORDER BY u.i, c.first_step`;

/** A chunk as a many-series read gets it: its summary when asked for and present, else its points. */
export interface ChunkPart {
  firstStep: number;
  summary: Buffer | null;
  points: DecodedChunk | null;
}

/**
 * For each (run, key, lo, hi), its chunks that meet [lo, hi], in step order (points outside the range included) —
 * one query for them all, so a chart of many runs costs one round trip here, not one per run. Pass a client in a
 * REPEATABLE READ transaction to read the tail in the same snapshot.
 */
export async function chunksIn(
  c: Queryable,
  ranges: readonly { runNum: string; keyId: number; lo: number; hi: number; summary?: boolean }[],
): Promise<ChunkPart[][]> {
  const out = ranges.map((): ChunkPart[] => []);
  if (!ranges.length) return out;
  const res = await c.query<{ i: number; first_step: number; summary: Buffer | null; payload: Buffer | null }>(
    OVERLAP_MANY_SQL,
    [
      ranges.map((_, i) => i),
      ranges.map((r) => r.runNum),
      ranges.map((r) => r.keyId),
      ranges.map((r) => r.lo),
      ranges.map((r) => r.hi),
      ranges.map((r) => !!r.summary),
    ],
  );
  for (const r of res.rows)
    out[r.i]!.push({
      firstStep: r.first_step,
      summary: r.summary,
      points: r.payload ? decodeChunk(r.payload) : null,
    });
  return out;
}

// chunks and tail in one statement: one snapshot, so a fold committing meanwhile cannot hide a point
const POINTS_SQL = `
  SELECT c.first_step, c.payload, NULL::int AS step, NULL::float8 AS value, NULL::float8 AS t
  FROM ((SELECT first_step, last_step, payload FROM metric_chunk
         WHERE run_num = $1 AND key_id = $2 AND first_step < $3 ORDER BY first_step DESC LIMIT 1)
        UNION ALL
        (SELECT first_step, last_step, payload FROM metric_chunk
         WHERE run_num = $1 AND key_id = $2 AND first_step BETWEEN $3 AND $4)) c
  WHERE c.last_step >= $3
  UNION ALL
  SELECT NULL, NULL, step, value, (extract(epoch FROM wall_time) * 1000)::bigint::float8
  FROM metric_point WHERE run_num = $1 AND key_id = $2 AND step BETWEEN $3 AND $4
  ORDER BY 1, 3`;

/** Every point of one (run, key) with lo ≤ step ≤ hi, exact, in step order: chunks decoded and merged with the tail. */
export async function readPoints(c: Queryable, runNum: string, keyId: number, lo: number, hi: number) {
  const res = await c.query<{ first_step: number; payload: Buffer | null; step: number; value: number; t: number }>(
    POINTS_SQL,
    [runNum, keyId, lo, hi],
  );
  const chunks: ChunkRow[] = [];
  const t: PointCols = { steps: [], values: [], times: [] };
  for (const r of res.rows) {
    if (r.payload) chunks.push({ i: 0, first_step: r.first_step, last_step: 0, payload: r.payload });
    else {
      t.steps.push(r.step);
      t.values.push(r.value);
      t.times.push(r.t);
    }
  }
  return mergeCols(decodeRange(chunks, lo, hi), t);
}

export const STEP_MIN = -(2 ** 31);
export const STEP_MAX = 2 ** 31 - 1;

/** A float8[] literal that keeps NaN, ±Infinity and -0 (node-postgres would send -0 as 0). */
export function floatArray(a: readonly (number | null)[]): string {
  return `{${a.map((v) => (v === null ? 'NULL' : Object.is(v, -0) ? '-0' : String(v))).join(',')}}`;
}

/** Points of a run stored now, in chunks and tail, and how many distinct (key, step) they are (for tests, benches). */
export async function countStoredPoints(c: Queryable, runNum: string | null): Promise<{ n: number; distinct: number }> {
  // one statement: one snapshot, while a background fold may be moving points
  const rows = await c.query<{ run_num: string; key_id: number; payload: Buffer | null; step: number | null }>(
    `SELECT run_num::text AS run_num, key_id, payload, NULL::int AS step FROM metric_chunk
     WHERE $1::bigint IS NULL OR run_num = $1
     UNION ALL
     SELECT run_num::text, key_id, NULL, step FROM metric_point WHERE $1::bigint IS NULL OR run_num = $1`,
    [runNum],
  );
  const seen = new Set<string>();
  let n = 0;
  for (const r of rows.rows) {
    const steps = r.payload ? decodeChunk(r.payload).steps : [r.step!];
    n += steps.length;
    for (const s of steps) seen.add(`${r.run_num}:${r.key_id}:${s}`);
  }
  return { n, distinct: seen.size };
}
