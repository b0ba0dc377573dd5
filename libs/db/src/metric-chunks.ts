/**
 * Compressed chunks of metric points (docs/architecture.md, "The metric store"). A (run, key, step) lives in exactly
 * one place: a `metric_chunk` (about CHUNK_POINTS points, encoded by metric-codec.ts) or the row-per-point tail
 * `metric_point`. Chunks of one (run, key) cover disjoint step ranges, so the chunks a step range needs are found
 * with two index probes. The fold moves tail points into chunks in one transaction under the run's row lock — the
 * lock every batch insert takes first — so a fold and a batch of the same run never interleave, and a crash at any
 * moment leaves either the tail rows or the chunk, never both or neither.
 */
import type { Pool, PoolClient } from 'pg';
import { chunkHeader, decodeChunk, encodeChunk, type DecodedChunk } from './metric-codec';
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

/** OVERLAP_SQL over many (run, key, lo, hi) at once, payloads only. */
const OVERLAP_MANY_SQL = `
  SELECT u.i, c.payload
  FROM unnest($1::int[], $2::bigint[], $3::int[], $4::int[], $5::int[]) AS u(i, num, k, lo, hi)
  CROSS JOIN LATERAL (
    (SELECT first_step, last_step, payload FROM metric_chunk
     WHERE run_num = u.num AND key_id = u.k AND first_step < u.lo ORDER BY first_step DESC LIMIT 1)
    UNION ALL
    (SELECT first_step, last_step, payload FROM metric_chunk
     WHERE run_num = u.num AND key_id = u.k AND first_step BETWEEN u.lo AND u.hi)
  ) c
  WHERE c.last_step >= u.lo
  ORDER BY u.i, c.first_step`;

/**
 * For each (run, key, lo, hi), its decoded chunks that meet [lo, hi], in step order (points outside the range
 * included) — one query for them all, so a chart of many runs costs one round trip here, not one per run.
 */
export async function chunksIn(
  c: Queryable,
  ranges: readonly { runNum: string; keyId: number; lo: number; hi: number }[],
): Promise<DecodedChunk[][]> {
  const out = ranges.map((): DecodedChunk[] => []);
  if (!ranges.length) return out;
  const res = await c.query<{ i: number; payload: Buffer }>(OVERLAP_MANY_SQL, [
    ranges.map((_, i) => i),
    ranges.map((r) => r.runNum),
    ranges.map((r) => r.keyId),
    ranges.map((r) => r.lo),
    ranges.map((r) => r.hi),
  ]);
  for (const r of res.rows) out[r.i]!.push(decodeChunk(r.payload));
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
export function foldKey(pool: Pool, runNum: string, keyId: number, opts: FoldOptions = {}): Promise<number> {
  return foldKeys(pool, runNum, [keyId], opts);
}

const TAIL_MANY_SQL = `
  SELECT key_id, step, value, (extract(epoch FROM wall_time) * 1000)::bigint::float8 AS t
  FROM metric_point WHERE run_num = $1 AND key_id = ANY($2::int[]) ORDER BY key_id, step`;

/**
 * foldKey for several keys of one run in one transaction and a handful of statements (the write path folds every
 * key a batch filled at once: one lock, one tail read, one chunk insert, one tail delete).
 */
export async function foldKeys(
  pool: Pool,
  runNum: string,
  keyIds: readonly number[],
  opts: FoldOptions = {},
): Promise<number> {
  const size = opts.chunkPoints ?? CHUNK_POINTS;
  if (!keyIds.length) return 0;
  const moved = await withTransaction(pool, async (c) => {
    const lock = await c.query('SELECT 1 FROM run WHERE num = $1 FOR NO KEY UPDATE', [runNum]);
    if (!lock.rowCount) return 0;
    const tail = await c.query<{ key_id: number; step: number; value: number; t: number }>(TAIL_MANY_SQL, [
      runNum,
      [...keyIds],
    ]);
    const byKey = new Map<number, PointCols>();
    for (const r of tail.rows) {
      let p = byKey.get(r.key_id);
      if (!p) byKey.set(r.key_id, (p = { steps: [], values: [], times: [] }));
      p.steps.push(r.step);
      p.values.push(r.value);
      p.times.push(r.t);
    }
    const work = [...byKey].filter(([, p]) => opts.force || p.steps.length >= size);
    if (!work.length) return 0;
    const old = await overlapping(
      c,
      runNum,
      work.map(([keyId, p]) => ({ keyId, lo: p.steps[0]!, hi: p.steps[p.steps.length - 1]! })),
    );
    const oldOf = work.map((): ChunkRow[] => []);
    for (const o of old) oldOf[o.i]!.push(o);
    const gone: { keyId: number; firstStep: number }[] = [];
    const chunks: { keyId: number; h: ReturnType<typeof chunkHeader>; payload: Buffer }[] = [];
    const cut: { keyId: number; upTo: number }[] = [];
    work.forEach(([keyId, t], n) => {
      const fromChunks = decodeRange(oldOf[n]!, STEP_MIN, STEP_MAX);
      const folded = new Set(fromChunks.steps);
      // a tail row already in a chunk cannot arise (the insert drops such points); if one did, the chunk's value wins
      const keep = t.steps.map((s) => !folded.has(s));
      const all = mergeCols(fromChunks, {
        steps: t.steps.filter((_, i) => keep[i]),
        values: t.values.filter((_, i) => keep[i]),
        times: t.times.filter((_, i) => keep[i]),
      });
      // points up to the last old chunk point must be re-chunked; past it, only whole chunks unless forced
      const lastOld = fromChunks.steps.length ? all.steps.indexOf(fromChunks.steps[fromChunks.steps.length - 1]!) : -1;
      const take = Math.max(opts.force ? all.steps.length : Math.floor(all.steps.length / size) * size, lastOld + 1);
      if (take === 0) return;
      const bounds: number[] = [];
      for (let b = 0; b < take; b += size) bounds.push(b);
      // a short remainder joins the chunk before it
      if (bounds.length > 1 && take - bounds[bounds.length - 1]! < size / 2) bounds.pop();
      bounds.forEach((b, k) => {
        const e = k + 1 < bounds.length ? bounds[k + 1]! : take;
        const p = { steps: all.steps.slice(b, e), values: all.values.slice(b, e), times: all.times.slice(b, e) };
        chunks.push({ keyId, h: chunkHeader(p), payload: Buffer.from(encodeChunk(p)) });
      });
      for (const o of oldOf[n]!) gone.push({ keyId, firstStep: o.first_step });
      cut.push({ keyId, upTo: all.steps[take - 1]! });
    });
    if (!chunks.length) return 0;
    if (gone.length)
      await c.query(
        `DELETE FROM metric_chunk c USING unnest($2::int[], $3::int[]) AS g(k, s)
         WHERE c.run_num = $1 AND c.key_id = g.k AND c.first_step = g.s`,
        [runNum, gone.map((g) => g.keyId), gone.map((g) => g.firstStep)],
      );
    await c.query(
      `INSERT INTO metric_chunk (run_num, key_id, first_step, last_step, count, nan_count, min, max,
                                 first_value, last_value, payload)
       SELECT $1, * FROM unnest($2::int[], $3::int[], $4::int[], $5::int[], $6::int[], $7::float8[], $8::float8[],
                                $9::float8[], $10::float8[], $11::bytea[])`,
      [
        runNum,
        chunks.map((k) => k.keyId),
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
    const del = await c.query(
      `DELETE FROM metric_point p USING unnest($2::int[], $3::int[]) AS d(k, s)
       WHERE p.run_num = $1 AND p.key_id = d.k AND p.step <= d.s`,
      [runNum, cut.map((x) => x.keyId), cut.map((x) => x.upTo)],
    );
    return del.rowCount ?? 0;
  });
  if (moved) noteTailDeletes(pool, moved);
  return moved;
}

/**
 * Folded tail rows leave dead tuples, and the tail's primary-key index keeps every page it ever grew to until a
 * vacuum marks them free: without one (autovacuum off, or behind a burst of ingest) the tail's table and index grow
 * as if nothing were ever folded (33 of 43 bytes a point after 10M points, autovacuum off). So each process vacuums the tail itself after
 * every tailVacuumRows() rows its folds deleted (AFT_METRIC_TAIL_VACUUM_ROWS, default 250,000): then inserts reuse the pages and the tail stays about that size.
 * Plain VACUUM blocks no reader or writer; one at a time per process; a failure only leaves it to the next one.
 */
export const tailVacuumRows = () => Number(process.env['AFT_METRIC_TAIL_VACUUM_ROWS'] ?? 250_000);
const tailVacuum = new WeakMap<Pool, { deleted: number; running: Promise<void> | null }>();

function noteTailDeletes(pool: Pool, n: number): void {
  let v = tailVacuum.get(pool);
  if (!v) tailVacuum.set(pool, (v = { deleted: 0, running: null }));
  v.deleted += n;
  if (v.deleted < tailVacuumRows() || v.running) return;
  v.deleted = 0;
  const state = v;
  state.running = pool
    .query('VACUUM metric_point')
    .then(
      () => undefined,
      () => undefined,
    )
    .finally(() => (state.running = null));
}

/** The tail vacuum this process has under way for `pool`, if any (tests and benches wait for it). */
export const tailVacuumDone = (pool: Pool): Promise<void> => tailVacuum.get(pool)?.running ?? Promise.resolve();

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
 * When points are folded into chunks as they come, AFT_METRIC_FOLD: `end` (the default) when a run ends
 * (foldEndedRun); `write` also by a batch insert when a key has a chunk's worth waiting; `0` never (then only
 * `foldPending`, a sweep, folds). Folding in the write path is not the default: it roughly halves ingest throughput
 * (bench:ingest, 1M points from 4 writers: 137k points/s without, 77k with), since the request that fills a chunk
 * reads its tail back, encodes it and deletes it. Read on each call so a process can flip it (tests, benches).
 */
export const metricFoldEnabled = () => !['0', 'off'].includes(process.env['AFT_METRIC_FOLD'] ?? '');
export const metricFoldOnWrite = () => process.env['AFT_METRIC_FOLD'] === 'write';

/**
 * A key whose tail holds fewer points when its run ends stays in the tail (until a `foldPending` sweep): the fold
 * runs on the request that ends the run, a transaction per key, and a handful of rows cost little either way.
 */
export const END_FOLD_MIN_POINTS = 64;

/**
 * Folds the rest of an ended run's tail into chunks (called where a run's status becomes terminal), key by key, each
 * its own transaction under the run lock, so a batch arriving late is folded before or kept after, never lost.
 */
export async function foldEndedRun(pool: Pool, runId: string): Promise<number> {
  if (!metricFoldEnabled()) return 0;
  const keys = await pool.query<{ num: string; key_id: number }>(
    `SELECT p.run_num::text AS num, p.key_id FROM run r JOIN metric_point p ON p.run_num = r.num
     WHERE r.id = $1 GROUP BY 1, 2 HAVING count(*) >= $2 ORDER BY 2`,
    [runId, END_FOLD_MIN_POINTS],
  );
  if (!keys.rows.length) return 0;
  return foldKeys(
    pool,
    keys.rows[0]!.num,
    keys.rows.map((k) => k.key_id),
    { force: true },
  );
}

/**
 * `foldEndedRun` where a run's status has already been written: a failure is logged, never thrown, since the points
 * stay in the tail (reads merge it) and the next `foldPending` folds them.
 */
export async function foldEndedRunQuietly(pool: Pool, runId: string): Promise<void> {
  await foldEndedRun(pool, runId).catch((e: unknown) => {
    console.warn(`[metrics] folding ended run ${runId} failed; its points stay in the tail: ${(e as Error).message}`);
  });
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
