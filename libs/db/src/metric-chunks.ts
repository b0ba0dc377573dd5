/**
 * Compressed chunks of metric points (docs/architecture.md, "The metric store"). A (run, key, step) lives in exactly
 * one place: a `metric_chunk` (about CHUNK_POINTS points, encoded by metric-codec.ts) or the row-per-point tail
 * `metric_point`. Chunks of one (run, key) cover disjoint step ranges, so the chunks a step range needs are found
 * with two index probes. The fold moves tail points into chunks in one transaction under the run's row lock — the
 * lock every batch insert takes first — so a fold and a batch of the same run never interleave, and a crash at any
 * moment leaves either the tail rows or the chunk, never both or neither.
 */
import type { Pool, PoolClient } from 'pg';
import { chunkHeader, decodeChunk, encodeChunk } from './metric-codec';
import { withTransaction } from './touch';

type Queryable = Pick<Pool | PoolClient, 'query'>;

/** Points a fold packs into one chunk (a chunk that absorbs late points may hold up to 1.5× as many). */
export const CHUNK_POINTS = 1000;

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

/**
 * For each (key id, lo, hi), the chunks whose step range meets [lo, hi]: the last chunk starting before lo (it may
 * reach into the range) and those starting inside it — both index probes, since ranges are disjoint.
 */
const OVERLAP_SQL = `
  SELECT u.i, c.first_step, c.last_step, c.payload
  FROM unnest($2::int[], $3::int[], $4::int[], $5::int[]) AS u(i, k, lo, hi)
  CROSS JOIN LATERAL (
    (SELECT first_step, last_step, payload FROM metric_chunk
     WHERE run_num = $1 AND key_id = u.k AND first_step < u.lo ORDER BY first_step DESC LIMIT 1)
    UNION ALL
    (SELECT first_step, last_step, payload FROM metric_chunk
     WHERE run_num = $1 AND key_id = u.k AND first_step BETWEEN u.lo AND u.hi)
  ) c
  WHERE c.last_step >= u.lo
  ORDER BY u.i, c.first_step`;

async function overlapping(
  c: Queryable,
  runNum: string,
  ranges: readonly { keyId: number; lo: number; hi: number }[],
): Promise<ChunkRow[]> {
  if (!ranges.length) return [];
  const res = await c.query<ChunkRow>(OVERLAP_SQL, [
    runNum,
    ranges.map((_, i) => i),
    ranges.map((r) => r.keyId),
    ranges.map((r) => r.lo),
    ranges.map((r) => r.hi),
  ]);
  return res.rows;
}

/**
 * The (key id, step) pairs among `points` that are already folded into chunks: a batch insert drops them (a late
 * retry of a batch whose points were folded since), so a point is stored once across the fold too.
 */
export async function foldedAmong(
  c: Queryable,
  runNum: string,
  points: readonly { keyId: number; step: number }[],
): Promise<Set<string>> {
  const byKey = new Map<number, { keyId: number; lo: number; hi: number }>();
  for (const p of points) {
    const r = byKey.get(p.keyId);
    if (!r) byKey.set(p.keyId, { keyId: p.keyId, lo: p.step, hi: p.step });
    else {
      if (p.step < r.lo) r.lo = p.step;
      if (p.step > r.hi) r.hi = p.step;
    }
  }
  const ranges = [...byKey.values()];
  const rows = await overlapping(c, runNum, ranges);
  const out = new Set<string>();
  if (!rows.length) return out;
  const wanted = new Set(points.map((p) => `${p.keyId}:${p.step}`));
  for (const row of rows) {
    const keyId = ranges[row.i]!.keyId;
    for (const s of decodeChunk(row.payload).steps) {
      const id = `${keyId}:${s}`;
      if (wanted.has(id)) out.add(id);
    }
  }
  return out;
}

const TAIL_SQL = `
  SELECT step, value, (extract(epoch FROM wall_time) * 1000)::bigint::float8 AS t
  FROM metric_point WHERE run_num = $1 AND key_id = $2 AND step BETWEEN $3 AND $4 ORDER BY step`;

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

/** Every point of one (run, key) with lo ≤ step ≤ hi, exact, in step order: chunks decoded and merged with the tail. */
export async function readPoints(c: Queryable, runNum: string, keyId: number, lo: number, hi: number) {
  const [chunks, tail] = await Promise.all([
    overlapping(c, runNum, [{ keyId, lo, hi }]),
    c.query<{ step: number; value: number; t: number }>(TAIL_SQL, [runNum, keyId, lo, hi]),
  ]);
  const t: PointCols = {
    steps: tail.rows.map((r) => r.step),
    values: tail.rows.map((r) => r.value),
    times: tail.rows.map((r) => r.t),
  };
  return mergeCols(decodeRange(chunks, lo, hi), t);
}

export const STEP_MIN = -(2 ** 31);
export const STEP_MAX = 2 ** 31 - 1;

export interface FoldOptions {
  /** Fold every tail point, however few (a finished run); otherwise only when at least a chunk's worth waits. */
  force?: boolean;
  chunkPoints?: number;
  /** Test hook: called after the chunks are written and before the tail rows are deleted, inside the transaction. */
  beforeTailDelete?: () => Promise<void>;
}

/**
 * Folds one (run, key)'s tail into chunks, in one transaction under the run's row lock. Tail points inside an
 * existing chunk's range (logged late) are merged into that chunk, which is re-encoded, so ranges stay disjoint.
 * Without `force`, the last partial chunk's worth of new points stays in the tail. Idempotent: a second call finds
 * less than a chunk waiting and does nothing. Returns the points moved out of the tail.
 */
export async function foldKey(pool: Pool, runNum: string, keyId: number, opts: FoldOptions = {}): Promise<number> {
  const size = opts.chunkPoints ?? CHUNK_POINTS;
  return withTransaction(pool, async (c) => {
    const lock = await c.query('SELECT 1 FROM run WHERE num = $1 FOR NO KEY UPDATE', [runNum]);
    if (!lock.rowCount) return 0;
    const tail = await c.query<{ step: number; value: number; t: number }>(TAIL_SQL, [
      runNum,
      keyId,
      STEP_MIN,
      STEP_MAX,
    ]);
    if (!tail.rows.length || (!opts.force && tail.rows.length < size)) return 0;
    const lo = tail.rows[0]!.step;
    const hi = tail.rows[tail.rows.length - 1]!.step;
    const old = await overlapping(c, runNum, [{ keyId, lo, hi }]);
    const fromChunks = decodeRange(old, STEP_MIN, STEP_MAX);
    const folded = new Set(fromChunks.steps);
    // a tail row already in a chunk cannot arise (the insert drops such points); if one did, the chunk's value wins
    const fresh = tail.rows.filter((r) => !folded.has(r.step));
    const all = mergeCols(fromChunks, {
      steps: fresh.map((r) => r.step),
      values: fresh.map((r) => r.value),
      times: fresh.map((r) => r.t),
    });
    // points up to the last old chunk point must be re-chunked; past it, only whole chunks unless forced
    const lastOld = fromChunks.steps.length ? all.steps.indexOf(fromChunks.steps[fromChunks.steps.length - 1]!) : -1;
    const take = Math.max(opts.force ? all.steps.length : Math.floor(all.steps.length / size) * size, lastOld + 1);
    if (take === 0) return 0;
    const bounds: number[] = [];
    for (let b = 0; b < take; b += size) bounds.push(b);
    // a short remainder joins the chunk before it
    if (bounds.length > 1 && take - bounds[bounds.length - 1]! < size / 2) bounds.pop();
    const chunks = bounds.map((b, n) => {
      const e = n + 1 < bounds.length ? bounds[n + 1]! : take;
      const p = { steps: all.steps.slice(b, e), values: all.values.slice(b, e), times: all.times.slice(b, e) };
      return { h: chunkHeader(p), payload: Buffer.from(encodeChunk(p)) };
    });
    if (old.length)
      await c.query('DELETE FROM metric_chunk WHERE run_num = $1 AND key_id = $2 AND first_step = ANY($3::int[])', [
        runNum,
        keyId,
        old.map((o) => o.first_step),
      ]);
    await c.query(
      `INSERT INTO metric_chunk (run_num, key_id, first_step, last_step, count, nan_count, min, max,
                                 first_value, last_value, payload)
       SELECT $1, $2, * FROM unnest($3::int[], $4::int[], $5::int[], $6::int[], $7::float8[], $8::float8[],
                                    $9::float8[], $10::float8[], $11::bytea[])`,
      [
        runNum,
        keyId,
        chunks.map((k) => k.h.firstStep),
        chunks.map((k) => k.h.lastStep),
        chunks.map((k) => k.h.count),
        chunks.map((k) => k.h.nanCount),
        floatArray(chunks.map((k) => k.h.min)),
        floatArray(chunks.map((k) => k.h.max)),
        floatArray(chunks.map((k) => k.h.firstValue)),
        floatArray(chunks.map((k) => k.h.lastValue)),
        chunks.map((k) => k.payload),
      ],
    );
    await opts.beforeTailDelete?.();
    const del = await c.query('DELETE FROM metric_point WHERE run_num = $1 AND key_id = $2 AND step <= $3', [
      runNum,
      keyId,
      all.steps[take - 1],
    ]);
    return del.rowCount ?? 0;
  });
}

/** A float8[] literal that keeps NaN, ±Infinity and -0 (node-postgres would send -0 as 0). */
function floatArray(a: readonly (number | null)[]): string {
  return `{${a.map((v) => (v === null ? 'NULL' : Object.is(v, -0) ? '-0' : String(v))).join(',')}}`;
}

/** Folds every key of a run (`force`: all of its tail, for a run that has ended). Returns points moved. */
export async function foldRun(pool: Pool, runNum: string, opts: FoldOptions = {}): Promise<number> {
  const keys = await pool.query<{ key_id: number }>(
    'SELECT DISTINCT key_id FROM metric_point WHERE run_num = $1 ORDER BY key_id',
    [runNum],
  );
  let moved = 0;
  for (const k of keys.rows) moved += await foldKey(pool, runNum, k.key_id, opts);
  return moved;
}

/**
 * One resumable pass over the whole tail (the migration step for data stored before chunks, and the periodic
 * sweep): folds every (run, key) holding a chunk's worth, and everything of runs that have ended. Each (run, key)
 * is its own transaction, so an interrupted pass loses nothing and the next one continues where it stopped.
 */
export async function foldPending(pool: Pool, opts: { chunkPoints?: number } = {}): Promise<number> {
  const size = opts.chunkPoints ?? CHUNK_POINTS;
  const todo = await pool.query<{ run_num: string; key_id: number; ended: boolean }>(
    `SELECT p.run_num::text AS run_num, p.key_id, bool_or(r.status NOT IN ('queued', 'running')) AS ended
     FROM metric_point p JOIN run r ON r.num = p.run_num
     GROUP BY 1, 2 HAVING count(*) >= $1 OR bool_or(r.status NOT IN ('queued', 'running'))`,
    [size],
  );
  let moved = 0;
  for (const t of todo.rows) moved += await foldKey(pool, t.run_num, t.key_id, { force: t.ended, chunkPoints: size });
  return moved;
}

/** Points of a run stored now, in chunks and tail, and how many distinct (key, step) they are (for tests, benches). */
export async function countStoredPoints(c: Queryable, runNum: string | null): Promise<{ n: number; distinct: number }> {
  const chunks = await c.query<{ key_id: number; run_num: string; payload: Buffer }>(
    `SELECT run_num::text AS run_num, key_id, payload FROM metric_chunk WHERE $1::bigint IS NULL OR run_num = $1`,
    [runNum],
  );
  const tail = await c.query<{ run_num: string; key_id: number; step: number }>(
    `SELECT run_num::text AS run_num, key_id, step FROM metric_point WHERE $1::bigint IS NULL OR run_num = $1`,
    [runNum],
  );
  const seen = new Set<string>();
  let n = tail.rows.length;
  for (const r of tail.rows) seen.add(`${r.run_num}:${r.key_id}:${r.step}`);
  for (const r of chunks.rows) {
    const steps = decodeChunk(r.payload).steps;
    n += steps.length;
    for (const s of steps) seen.add(`${r.run_num}:${r.key_id}:${s}`);
  }
  return { n, distinct: seen.size };
}
