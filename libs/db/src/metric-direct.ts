/**
 * Chunks written straight from a batch (docs/architecture.md, "The metric store"). A trainer's batch usually holds
 * hundreds or thousands of new steps of each key, all past anything stored: those points become chunks in the
 * batch's own transaction and never touch the row-per-point tail — one row instead of hundreds inserted, then read
 * back, deleted and vacuumed by a fold. All of a key's fresh points do, however few past DIRECT_MIN_POINTS (a chunk
 * may be small: sealing merges small chunks, metric-seal.ts), with its tail when the tail lies between the chunks
 * and the batch: a remainder left in the tail was read back and cut by every later batch, and batches of half a
 * chunk a key (the SDK's default until then) went through the tail entirely, at a third of the throughput. Steps
 * that meet anything stored, and keys with fewer points, go to the tail as before. Runs under the run's row lock,
 * which the insert holds.
 */
import type { PoolClient } from 'pg';
import type { PointCols } from './metric-chunks';
import { MAX_TIME, MIN_TIME } from './metric-codec';
import { CHUNK_POINTS, cutTail, DIRECT_MIN_POINTS, pieces, writeChunks, type NewChunk } from './metric-write';

/** One key's fresh points of a batch, in the batch's order: indices into the batch's columns. Each key once. */
export interface KeyRows {
  keyId: number;
  rows: number[];
}

interface KeyState {
  key_id: number;
  chunk_last: number | null;
  tail_first: number | null;
  tail_last: number | null;
  tail_n: number;
  /** Whether a chunk, or a tail point, lies within the batch's steps of the key. */
  chunk_overlap: boolean;
  tail_overlap: boolean;
  now_ms: number;
}

// per key: the end of its chunks, of its tail and the tail's size up to what matters; whether a chunk or tail point
// lies in the batch's steps [lo, hi] (chunks never overlap, so only the last one starting at or before hi can);
// index probes all. now() as the tail's insert has it
const STATE_SQL = `
  SELECT k.key_id,
    coalesce((SELECT last_step FROM metric_chunk WHERE run_num = $1 AND key_id = k.key_id AND first_step <= k.hi
              ORDER BY first_step DESC LIMIT 1) >= k.lo, false) AS chunk_overlap,
    EXISTS (SELECT 1 FROM metric_point WHERE run_num = $1 AND key_id = k.key_id AND step BETWEEN k.lo AND k.hi)
      AS tail_overlap,
    (SELECT last_step FROM metric_chunk WHERE run_num = $1 AND key_id = k.key_id ORDER BY first_step DESC LIMIT 1)
      AS chunk_last,
    (SELECT step FROM metric_point WHERE run_num = $1 AND key_id = k.key_id ORDER BY step LIMIT 1) AS tail_first,
    (SELECT step FROM metric_point WHERE run_num = $1 AND key_id = k.key_id ORDER BY step DESC LIMIT 1) AS tail_last,
    (SELECT count(*)::int FROM (SELECT 1 FROM metric_point WHERE run_num = $1 AND key_id = k.key_id LIMIT $3) x)
      AS tail_n,
    (extract(epoch FROM now()) * 1000)::bigint::float8 AS now_ms
  FROM unnest($2::int[], $4::int[], $5::int[]) AS k(key_id, lo, hi)`;

const TAIL_SQL = `
  SELECT key_id, step, value, (extract(epoch FROM wall_time) * 1000)::bigint::float8 AS t
  FROM metric_point WHERE run_num = $1 AND key_id = ANY($2::int[]) ORDER BY key_id, step`;

/**
 * Writes as chunks the points of each key that can be, when the batch has at least `min` of them: the key's tail
 * plus this batch's points when every batch step lies past all it has stored (so none can be a repeat) and every
 * tail step past its chunks (so the new chunks' range meets no other); or the batch's points alone when no chunk
 * and no tail point lies within their steps. Cut as a fold cuts (`pieces`: `size` each, a short rest joining the
 * last). Returns the batch rows now in chunks (the caller inserts the rest into the tail, and counts these as
 * inserted) and the keys whose tail it emptied.
 */
export async function chunkFromBatch(
  c: PoolClient,
  runNum: string,
  keys: readonly KeyRows[],
  cols: { step: readonly number[]; value: readonly number[]; time?: readonly (number | null)[] | undefined },
  size = CHUNK_POINTS,
  min = DIRECT_MIN_POINTS,
): Promise<{ rows: Set<number>; keys: Set<number> }> {
  const done = new Set<number>();
  const none = { rows: done, keys: new Set<number>() };
  const sorted = (k: KeyRows) => {
    const r = [...k.rows];
    for (let i = 1; i < r.length; i++)
      if (cols.step[r[i]!]! < cols.step[r[i - 1]!]!) return r.sort((a, b) => cols.step[a]! - cols.step[b]!);
    return r;
  };
  const maybe = keys.filter((k) => k.rows.length >= min).map((k) => ({ ...k, rows: sorted(k) }));
  if (!maybe.length) return none;
  const state = await c.query<KeyState>(STATE_SQL, [
    runNum,
    maybe.map((k) => k.keyId),
    2 * size + 1,
    maybe.map((k) => cols.step[k.rows[0]!]!),
    maybe.map((k) => cols.step[k.rows[k.rows.length - 1]!]!),
  ]);
  const byId = new Map(state.rows.map((s) => [s.key_id, s]));
  const fresh = maybe.flatMap((k) => {
    const s = byId.get(k.keyId)!;
    const first = cols.step[k.rows[0]!]!;
    const past = (s.chunk_last === null || first > s.chunk_last) && (s.tail_last === null || first > s.tail_last);
    // a late point waiting in the tail (at or before the chunks' end) belongs in an existing chunk: the fold's
    const tailFresh = s.tail_first === null || s.chunk_last === null || s.tail_first > s.chunk_last;
    // a tail of many chunks (folding off or far behind) is the fold's to do, not this request's
    if (past && tailFresh && s.tail_n <= 2 * size) return [{ ...k, s, withTail: true }];
    // steps no chunk and no tail point holds (so none is a repeat): batches of one run that arrive out of order —
    // the SDK keeps several in flight — fill the gap the later one left; the tail is left as it is
    return !s.chunk_overlap && !s.tail_overlap ? [{ ...k, s, withTail: false }] : [];
  });
  if (!fresh.length) return none;
  const withTail = fresh.filter((k) => k.withTail && k.s.tail_n > 0).map((k) => k.keyId);
  const tail = withTail.length
    ? (await c.query<{ key_id: number; step: number; value: number; t: number }>(TAIL_SQL, [runNum, withTail])).rows
    : [];
  const made: NewChunk[] = [];
  const untouched = new Set<number>();
  const cut: { keyId: number; from: number; upTo: number }[] = [];
  for (const k of fresh) {
    const p: PointCols = { steps: [], values: [], times: [] };
    for (const r of k.withTail ? tail : [])
      if (r.key_id === k.keyId) {
        p.steps.push(r.step);
        p.values.push(r.value);
        p.times.push(r.t);
      }
    const fromTail = p.steps.length;
    for (const i of k.rows) {
      p.steps.push(cols.step[i]!);
      p.values.push(cols.value[i]!);
      p.times.push(cols.time?.[i] ?? k.s.now_ms);
    }
    // a time the codec cannot hold (stored before the API bounded times) leaves the key to the tail, as before
    if (p.times.some((t) => !(Number.isInteger(t) && t >= MIN_TIME && t < MAX_TIME))) {
      untouched.add(k.keyId);
      continue;
    }
    for (const piece of pieces(p, size)) made.push({ keyId: k.keyId, p: piece });
    if (fromTail) cut.push({ keyId: k.keyId, from: p.steps[0]!, upTo: p.steps[fromTail - 1]! });
    for (const r of k.rows) done.add(r);
  }
  if (!made.length) return none;
  await writeChunks(c, runNum, [], made);
  await cutTail(c, runNum, cut);
  return {
    rows: done,
    keys: new Set(fresh.filter((k) => k.withTail && !untouched.has(k.keyId)).map((k) => k.keyId)),
  };
}
