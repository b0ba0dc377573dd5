/**
 * The fold: tail points (`metric_point`) into compressed chunks (docs/architecture.md, "The metric store").
 * Each slice is one transaction under the run's row lock — the lock every batch insert takes first — so a fold
 * and a batch of the same run never interleave, and a crash at any moment leaves either the tail rows or the
 * chunk, never both or neither. A slice reads at most SLICE_CHUNKS chunks' worth of each key's lowest tail steps,
 * so a fold's time and memory are bounded however long the run; a key with more waiting takes further slices.
 */
import type { Pool, PoolClient } from 'pg';
import { decodeChunk } from './metric-codec';
import { STEP_MIN, type PointCols } from './metric-chunks';
import { sealedPoints, sealKeys } from './metric-seal';
import { noteChurn } from './metric-vacuum';
import {
  CHUNK_POINTS,
  cutTail,
  inSlices,
  pieces,
  PAYLOADS_SQL,
  SLICE_CHUNKS,
  SLICE_KEYS,
  writeChunks,
  type NewChunk,
} from './metric-write';
import { withTransaction } from './touch';

export interface FoldOptions {
  /** Fold every tail point, however few (a finished run); otherwise only whole chunks. */
  force?: boolean;
  /** Points a chunk is cut at (CHUNK_POINTS); sealing merges four of them (metric-seal.ts). */
  chunkPoints?: number;
  /** false: no sealing after a forced fold (the fold's own tests). */
  seal?: boolean;
  /** Test hook: called after the chunks are written and before the tail rows are deleted, inside the transaction. */
  beforeTailDelete?: () => Promise<void>;
}

interface OldChunk {
  first_step: number;
  last_step: number;
  count: number;
  payload: Buffer | null;
}

// from a step on: a continuing slice starts past what the last one folded, not at the dead rows it left behind
// (their index entries stay until a vacuum, and walking them each slice made a long fold quadratic)
const TAIL_SLICE_SQL = `
  SELECT k.key_id, p.step, p.value, p.t
  FROM unnest($2::int[], $4::int[]) AS k(key_id, lo) CROSS JOIN LATERAL (
    SELECT step, value, (extract(epoch FROM wall_time) * 1000)::bigint::float8 AS t FROM metric_point
    WHERE run_num = $1 AND key_id = k.key_id AND step >= k.lo ORDER BY step LIMIT $3) p
  ORDER BY 1, 2`;

// the last chunk of each key: the one fresh points may join when it is short
const LAST_SQL = `
  SELECT k.key_id, c.first_step, c.last_step, c.count
  FROM unnest($2::int[]) AS k(key_id) CROSS JOIN LATERAL (
    SELECT first_step, last_step, count FROM metric_chunk WHERE run_num = $1 AND key_id = k.key_id
    ORDER BY first_step DESC LIMIT 1) c`;

// the chunk each late step belongs in: the last one starting at or before it, else the key's first chunk
const OWNERS_SQL = `
  SELECT DISTINCT u.k AS key_id, COALESCE(
    (SELECT first_step FROM metric_chunk WHERE run_num = $1 AND key_id = u.k AND first_step <= u.s
     ORDER BY first_step DESC LIMIT 1),
    (SELECT first_step FROM metric_chunk WHERE run_num = $1 AND key_id = u.k ORDER BY first_step LIMIT 1)) AS first_step
  FROM unnest($2::int[], $3::int[]) AS u(k, s)`;

const cols = (): PointCols => ({ steps: [], values: [], times: [] });
const push = (p: PointCols, q: PointCols, i: number) => {
  p.steps.push(q.steps[i]!);
  p.values.push(q.values[i]!);
  p.times.push(q.times[i]!);
};

/** Of chunk starts in ascending order, the one a step belongs in: the last at or before it, else the first. */
function ownerOf(starts: readonly number[], s: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= s) lo = mid;
    else hi = mid - 1;
  }
  return starts[lo]!;
}

/** Merges step-ordered `extra` into a decoded chunk; a step the chunk holds keeps the chunk's value. */
function mergeInto(payload: Buffer, extra: PointCols): PointCols {
  const raw = decodeChunk(payload);
  const d: PointCols = { steps: [...raw.steps], values: [...raw.values], times: [...raw.times] };
  const out = cols();
  let j = 0;
  for (let i = 0; i <= d.steps.length; i++) {
    const s = i < d.steps.length ? d.steps[i]! : Infinity;
    while (j < extra.steps.length && extra.steps[j]! <= s) {
      if (extra.steps[j]! < s) push(out, extra, j);
      j++;
    }
    if (i < d.steps.length) push(out, d, i);
  }
  return out;
}

/**
 * One slice for several keys of one run. Late tail points (at or before the key's last chunk's last step: a
 * backfill) are merged into the chunk they belong in, and only that chunk is re-encoded; fresh points become new
 * chunks, whole ones only unless forced, and join the last chunk when it is short (a forced fold's remainder).
 * Returns the points moved out of the tail and the keys that have more waiting than this slice took.
 */
async function foldSlice(
  c: PoolClient,
  runNum: string,
  keyIds: readonly number[],
  opts: FoldOptions,
  from: ReadonlyMap<number, number>,
): Promise<{ moved: number; more: number[]; resume: Map<number, number>; replaced: number }> {
  const size = opts.chunkPoints ?? CHUNK_POINTS;
  const limit = SLICE_CHUNKS * size;
  const lock = await c.query('SELECT 1 FROM run WHERE num = $1 FOR NO KEY UPDATE', [runNum]);
  if (!lock.rowCount) return { moved: 0, more: [], resume: new Map(), replaced: 0 };
  // a run newer than the statistics looks tiny to the planner, which then reads all of a key's tail (a bitmap scan)
  // and sorts it, for every slice: the primary key's order is the plan wanted
  // (and no JIT: a slice's queries are small, and compiling them costs 100 ms each)
  await c.query('SET LOCAL enable_bitmapscan = off');
  await c.query('SET LOCAL jit = off');
  const tail = await c.query<{ key_id: number; step: number; value: number; t: number }>(TAIL_SLICE_SQL, [
    runNum,
    [...keyIds],
    limit + 1,
    keyIds.map((k) => from.get(k) ?? STEP_MIN),
  ]);
  const byKey = new Map<number, PointCols>();
  for (const r of tail.rows) {
    let p = byKey.get(r.key_id);
    if (!p) byKey.set(r.key_id, (p = cols()));
    p.steps.push(r.step);
    p.values.push(r.value);
    p.times.push(r.t);
  }
  const more: number[] = [];
  for (const [k, p] of byKey)
    if (p.steps.length > limit) {
      more.push(k);
      for (const a of [p.steps, p.values, p.times]) a.length = limit;
    }
  const lastRows = await c.query<OldChunk & { key_id: number }>(LAST_SQL, [runNum, [...byKey.keys()]]);
  const last = new Map(lastRows.rows.map((r) => [r.key_id, r]));
  const late: { k: number; s: number }[] = [];
  for (const [k, p] of byKey) {
    const l = last.get(k);
    if (l) for (const s of p.steps) if (s <= l.last_step) late.push({ k, s });
  }
  // owners of the late steps, a growing prefix of each key's at a time: a backfill scattered over many chunks
  // stops being looked up once it has more owners than a slice takes (one lookup per late step made it quadratic)
  const ownerSteps: { key_id: number; first_step: number }[] = [];
  const pending = new Map<number, number[]>();
  for (const x of late) {
    const steps = pending.get(x.k);
    if (steps) steps.push(x.s);
    else pending.set(x.k, [x.s]);
  }
  const found = new Map<number, Set<number>>();
  for (let n = 64; pending.size; n *= 4) {
    const ask = [...pending].flatMap(([k, steps]) => steps.splice(0, n).map((st) => ({ k, s: st })));
    const got = await c.query<{ key_id: number; first_step: number }>(OWNERS_SQL, [
      runNum,
      ask.map((x) => x.k),
      ask.map((x) => x.s),
    ]);
    for (const o of got.rows) {
      const f = found.get(o.key_id) ?? new Set<number>();
      found.set(o.key_id, f);
      if (!f.has(o.first_step)) ownerSteps.push(o);
      f.add(o.first_step);
    }
    for (const [k, steps] of pending) if (!steps.length || (found.get(k)?.size ?? 0) > SLICE_CHUNKS) pending.delete(k);
  }
  // at most SLICE_CHUNKS chunks re-encoded per key: late points scattered over many chunks (a backfill of one
  // step in each) take several slices, so a slice's work stays bounded
  const chosen: { k: number; f: number }[] = [];
  for (const [k, t] of byKey) {
    const l = last.get(k);
    const mine = ownerSteps
      .filter((o) => o.key_id === k)
      .map((o) => o.first_step)
      .sort((x, y) => x - y);
    const used = new Set<number>();
    for (let i = 0; i < t.steps.length && l && t.steps[i]! <= l.last_step; i++) {
      const o = ownerOf(mine, t.steps[i]!);
      if (!used.has(o) && used.size === SLICE_CHUNKS) {
        for (const a of [t.steps, t.values, t.times]) a.length = i;
        if (!more.includes(k)) more.push(k);
        break;
      }
      used.add(o);
    }
    for (const f of used) chosen.push({ k, f });
  }
  const owners = chosen.length
    ? (
        await c.query<OldChunk & { key_id: number }>(PAYLOADS_SQL, [
          runNum,
          chosen.map((x) => x.k),
          chosen.map((x) => x.f),
        ])
      ).rows
    : [];
  const gone: { keyId: number; firstStep: number }[] = [];
  const made: NewChunk[] = [];
  const cut: { keyId: number; from: number; upTo: number }[] = [];
  for (const [keyId, t] of byKey) {
    const l = last.get(keyId);
    const mine = owners.filter((o) => o.key_id === keyId).sort((a, b) => a.first_step - b.first_step);
    // late points, each to the last owner starting at or before it (or the first chunk)
    const toOwner = mine.map(cols);
    const fresh = cols();
    const starts = mine.map((o) => o.first_step);
    t.steps.forEach((s, i) => {
      if (!l || s > l.last_step) return push(fresh, t, i);
      push(toOwner[starts.indexOf(ownerOf(starts, s))]!, t, i);
    });
    const rewritten = new Map<number, PointCols>();
    mine.forEach((o, n) => rewritten.set(o.first_step, mergeInto(o.payload!, toOwner[n]!)));
    // fresh points join the last chunk when it is short, and a forced fold's short rest joins it too, so small
    // chunks do not pile up
    const force = opts.force && !more.includes(keyId);
    // a sealed chunk (bigger than a fold makes one) that is re-encoded keeps a sealed chunk's size, so it is neither
    // cut back into fold-sized pieces (only to be sealed again) nor let grow without bound by late points
    const capOf = (count: number) => (count > 1.5 * size ? sealedPoints(size) : size);
    let base: PointCols = cols();
    let lastJoins = false;
    if (l && fresh.steps.length && (l.count < size || (force && fresh.steps.length <= size / 2))) {
      base = rewritten.get(l.first_step) ?? mergeInto((await payloadOf(c, runNum, keyId, l.first_step))!, cols());
      lastJoins = true;
    }
    const pool: PointCols = {
      steps: [...base.steps, ...fresh.steps],
      values: [...base.values, ...fresh.values],
      times: [...base.times, ...fresh.times],
    };
    const take = force ? pool.steps.length : Math.floor(pool.steps.length / size) * size;
    const freshTaken = take - base.steps.length;
    if (freshTaken <= 0) lastJoins = false;
    if (lastJoins) {
      rewritten.delete(l!.first_step);
      gone.push({ keyId, firstStep: l!.first_step });
      const head = {
        steps: pool.steps.slice(0, take),
        values: pool.values.slice(0, take),
        times: pool.times.slice(0, take),
      };
      for (const p of pieces(head, capOf(l!.count))) made.push({ keyId, p });
    } else if (freshTaken > 0) {
      const head = {
        steps: fresh.steps.slice(0, freshTaken),
        values: fresh.values.slice(0, freshTaken),
        times: fresh.times.slice(0, freshTaken),
      };
      for (const p of pieces(head, size)) made.push({ keyId, p });
    }
    for (const [firstStep, p] of rewritten) {
      gone.push({ keyId, firstStep });
      const cap = capOf(mine.find((o) => o.first_step === firstStep)!.count);
      for (const q of p.steps.length > 1.5 * cap ? pieces(p, cap) : [p]) made.push({ keyId, p: q });
    }
    const lateMax = toOwner.reduce((m, p) => Math.max(m, ...p.steps), -Infinity);
    const upTo = freshTaken > 0 ? fresh.steps[freshTaken - 1]! : lateMax;
    if (upTo !== -Infinity) cut.push({ keyId, from: t.steps[0]!, upTo });
  }
  const resume = new Map(cut.filter((x) => more.includes(x.keyId)).map((x) => [x.keyId, x.upTo + 1]));
  if (!made.length) return { moved: 0, more, resume, replaced: 0 };
  await writeChunks(c, runNum, gone, made);
  await opts.beforeTailDelete?.();
  return { moved: await cutTail(c, runNum, cut), more, resume, replaced: gone.length };
}

async function payloadOf(c: PoolClient, runNum: string, keyId: number, firstStep: number): Promise<Buffer | null> {
  const r = await c.query<{ payload: Buffer }>(
    'SELECT payload FROM metric_chunk WHERE run_num = $1 AND key_id = $2 AND first_step = $3',
    [runNum, keyId, firstStep],
  );
  return r.rows[0]?.payload ?? null;
}

/**
 * Folds keys of one run, SLICE_KEYS keys and SLICE_CHUNKS chunks' worth of each per transaction, until what is
 * left is under a chunk (or, with `force`, nothing); with `force` (a run that has ended) then seals them
 * (metric-seal.ts). Idempotent: a second call finds less than a chunk waiting and nothing to seal, and does nothing. Returns
 * the points moved out of the tail.
 */
export async function foldKeys(
  pool: Pool,
  runNum: string,
  keyIds: readonly number[],
  opts: FoldOptions = {},
): Promise<number> {
  let moved = 0;
  let replaced = 0;
  const todoKeys = [...new Set(keyIds)];
  const from = new Map<number, number>();
  // a point the codec refuses (stored before the API bounded times) keeps its key in the tail, where reads find it
  await inSlices(
    todoKeys,
    SLICE_KEYS,
    async (group) => {
      const r = await withTransaction(pool, (c) => foldSlice(c, runNum, group, opts, from));
      moved += r.moved;
      replaced += r.replaced;
      for (const [k, f] of r.resume) from.set(k, f);
      return r.more;
    },
    (key, e) => console.warn(`[metrics] run ${runNum}, key id ${key}: left in the tail: ${e.message}`),
  );
  if (moved) noteChurn(pool, 'metric_point', moved);
  if (replaced) noteChurn(pool, 'metric_chunk', replaced);
  // a run that has ended grows no more: its small chunks are sealed now (a live run's, by the sweep)
  if (opts.force && opts.seal !== false)
    await sealKeys(pool, runNum, todoKeys, { final: true, sealed: sealedPoints(opts.chunkPoints) });
  return moved;
}

export function foldKey(pool: Pool, runNum: string, keyId: number, opts: FoldOptions = {}): Promise<number> {
  return foldKeys(pool, runNum, [keyId], opts);
}

/** Folds and seals every key of a run (`force`: all of its tail, for a run that has ended). */
export async function foldRun(pool: Pool, runNum: string, opts: FoldOptions = {}): Promise<number> {
  const keys = await pool.query<{ key_id: number }>(
    `SELECT key_id FROM metric_point WHERE run_num = $1 UNION SELECT key_id FROM metric_chunk WHERE run_num = $1
     ORDER BY key_id`,
    [runNum],
  );
  return foldKeys(
    pool,
    runNum,
    keys.rows.map((k) => k.key_id),
    opts,
  );
}
