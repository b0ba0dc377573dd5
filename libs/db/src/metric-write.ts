/**
 * Writing chunks (docs/architecture.md, "The metric store"): the sizes, and the statements the fold and the batch's
 * direct path share. Every caller holds the run's row lock in its transaction.
 */
import type { PoolClient } from 'pg';
import { chunkHeader, encodeChunk } from './metric-codec';
import { encodeSummary } from './metric-summary';
import { floatArray, type PointCols } from './metric-chunks';

/**
 * Points a fold packs into one chunk (a chunk that absorbs late points may hold up to 1.5× as many; a sealed one,
 * metric-seal.ts, up to 1.5 × SEALED_POINTS).
 */
export const CHUNK_POINTS = 1000;
/** Chunks' worth of each key's tail one slice folds at most. */
export const SLICE_CHUNKS = 8;
/**
 * Keys one slice folds at most: with SLICE_CHUNKS, at most 32,000 tail points a transaction, and SLICE_CHUNKS chunks
 * a key re-encoded for late points (sealed ones: up to 6,000 points each).
 */
export const SLICE_KEYS = 4;
/**
 * Fewest fresh points of a key a batch writes as a chunk of its own (metric-direct.ts); fewer go to the tail. A
 * chunk's row costs about 120 bytes until sealing merges it, 1.2 bytes a point at this size; a tail row about 50.
 */
export const DIRECT_MIN_POINTS = CHUNK_POINTS / 10;

/** Cuts points into pieces of `size`; a rest of at most half a piece joins the piece before it. */
export function pieces(p: PointCols, size: number): PointCols[] {
  const whole = Math.floor(p.steps.length / size);
  const rest = p.steps.length - whole * size;
  const n = whole === 0 ? 1 : rest > size / 2 ? whole + 1 : whole;
  const out: PointCols[] = [];
  for (let k = 0; k < n; k++) {
    const b = k * size;
    const e = k === n - 1 ? p.steps.length : b + size;
    out.push({ steps: p.steps.slice(b, e), values: p.values.slice(b, e), times: p.times.slice(b, e) });
  }
  return out;
}

export interface NewChunk {
  keyId: number;
  p: PointCols;
}

export const PAYLOADS_SQL = `
  SELECT m.key_id, m.first_step, m.last_step, m.count, m.payload
  FROM unnest($2::int[], $3::int[]) AS u(k, f)
  JOIN metric_chunk m ON m.run_num = $1 AND m.key_id = u.k AND m.first_step = u.f`;

/** Deletes the tail rows now in chunks: per key, the steps from `from` to `upTo`. Returns how many. */
export async function cutTail(
  c: PoolClient,
  runNum: string,
  cut: readonly { keyId: number; from: number; upTo: number }[],
): Promise<number> {
  if (!cut.length) return 0;
  const del = await c.query(
    `DELETE FROM metric_point p USING unnest($2::int[], $3::int[], $4::int[]) AS d(k, lo, s)
     WHERE p.run_num = $1 AND p.key_id = d.k AND p.step BETWEEN d.lo AND d.s`,
    [runNum, cut.map((x) => x.keyId), cut.map((x) => x.from), cut.map((x) => x.upTo)],
  );
  return del.rowCount ?? 0;
}

export async function writeChunks(
  c: PoolClient,
  runNum: string,
  gone: readonly { keyId: number; firstStep: number }[],
  made: readonly NewChunk[],
): Promise<void> {
  if (gone.length)
    await c.query(
      `DELETE FROM metric_chunk c USING unnest($2::int[], $3::int[]) AS g(k, s)
       WHERE c.run_num = $1 AND c.key_id = g.k AND c.first_step = g.s`,
      [runNum, gone.map((g) => g.keyId), gone.map((g) => g.firstStep)],
    );
  const h = made.map((m) => chunkHeader(m.p));
  await c.query(
    `INSERT INTO metric_chunk (run_num, key_id, first_step, last_step, count, nan_count, min, max,
                               first_value, last_value, payload, summary)
     SELECT $1, * FROM unnest($2::int[], $3::int[], $4::int[], $5::int[], $6::int[], $7::float8[], $8::float8[],
                              $9::float8[], $10::float8[], $11::bytea[], $12::bytea[])`,
    [
      runNum,
      made.map((m) => m.keyId),
      h.map((x) => x.firstStep),
      h.map((x) => x.lastStep),
      h.map((x) => x.count),
      h.map((x) => x.nanCount),
      floatArray(h.map((x) => x.min)),
      floatArray(h.map((x) => x.max)),
      floatArray(h.map((x) => x.firstValue)),
      floatArray(h.map((x) => x.lastValue)),
      made.map((m) => Buffer.from(encodeChunk(m.p))),
      made.map((m) => encodeSummary(m.p.steps, m.p.values)),
    ],
  );
}

/**
 * Runs `slice` over keys, `per` at a time, each call its own transaction (the caller's), until no call returns
 * more keys to do. A RangeError (a point or chunk the codec refuses) must not hold up the other keys: a group that
 * throws one is retried key by key, and a key that throws alone is passed to `gaveUp` and dropped.
 */
export async function inSlices<K>(
  keys: readonly K[],
  per: number,
  slice: (group: K[]) => Promise<K[]>,
  gaveUp: (key: K, e: RangeError) => void,
): Promise<void> {
  const todo = [...keys];
  const alone: K[] = [];
  while (todo.length || alone.length) {
    const single = !todo.length;
    const group = single ? [alone.shift()!] : todo.splice(0, per);
    try {
      (single ? alone : todo).push(...(await slice(group)));
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      if (!single) alone.push(...group);
      else gaveUp(group[0]!, e);
    }
  }
}
