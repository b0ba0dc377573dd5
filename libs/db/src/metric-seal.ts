/**
 * Sealing: a key's small chunks merged into big ones (docs/architecture.md, "The metric store"). A batch writes
 * chunks of up to about CHUNK_POINTS, what a trainer's batch holds of a key (metric-direct.ts), but every chunk has
 * fixed costs: its row, its TOAST rows and their index entries, and the part-filled TOAST page its last piece
 * leaves. At 1,000 points those are about 0.4 bytes a point, a tenth of all the store takes. So a key's
 * neighbouring small chunks (at most half of SEALED_POINTS each) are merged into chunks of about SEALED_POINTS: a
 * live run's by the periodic sweep once they hold that many, the rest when the run ends (sealGroups has the rules).
 *
 * A merge decodes nothing: the payloads are laid end to end by Postgres (the codec reads them so), the headers are
 * combined there, and only the summaries are joined here. So it costs little more than the rows' rewrite (bench:
 * about 0.1 CPU-seconds a million points, where decoding and encoding them took 0.6).
 *
 * Each slice is one transaction under the run's row lock, like the fold's: readers see the small chunks or the big
 * one, never both or neither, and a crash loses nothing. A slice merges at most GROUPS groups a key (each at most
 * 1.5 × SEALED_POINTS points) and reads at most HEADS chunk headers a key.
 */
import type { Pool, PoolClient } from 'pg';
import { decodeChunk } from './metric-codec';
import { STEP_MIN } from './metric-chunks';
import { encodeSummary, joinSummaries } from './metric-summary';
import { CHUNK_POINTS, inSlices } from './metric-write';
import { noteChurn } from './metric-vacuum';
import { withTransaction } from './touch';

/** Points of a sealed chunk for chunks cut at `chunkPoints`: small chunks are merged once they hold this many. */
export const sealedPoints = (chunkPoints = CHUNK_POINTS) => 4 * chunkPoints;
export const SEALED_POINTS = sealedPoints();
const GROUPS = 2;
const HEADS = 256;
/** Keys one slice seals at most: the merge is Postgres' (no payload is read here), so a slice can take many. */
const SEAL_KEYS = 16;

// a key's chunk headers from `lo` on
const HEADS_SQL = `
  SELECT k.key_id, h.first_step, h.count
  FROM unnest($2::int[], $3::int[]) AS k(key_id, lo) CROSS JOIN LATERAL (
    SELECT first_step, count FROM metric_chunk
    WHERE run_num = $1 AND key_id = k.key_id AND first_step >= k.lo ORDER BY first_step LIMIT $4) h
  ORDER BY 1, 2`;

// the parts' step ranges and summaries: all of a merge that is read into this process
const PARTS_SQL = `
  SELECT m.key_id, m.first_step, m.last_step, m.summary
  FROM unnest($2::int[], $3::int[]) AS u(k, f)
  JOIN metric_chunk m ON m.run_num = $1 AND m.key_id = u.k AND m.first_step = u.f`;

// each group's chunks out, one chunk of them in: payloads laid end to end (decodeChunk reads them so) and headers
// combined by Postgres itself, so no payload crosses the wire; summaries from $5 (null: from the points, later)
const MERGE_SQL = `
  WITH g AS (SELECT * FROM unnest($2::int[], $3::int[], $4::int[]) AS g(k, f, grp)),
  parts AS (
    DELETE FROM metric_chunk m USING g WHERE m.run_num = $1 AND m.key_id = g.k AND m.first_step = g.f
    RETURNING g.grp, m.*)
  INSERT INTO metric_chunk (run_num, key_id, first_step, last_step, count, nan_count, min, max, first_value,
                            last_value, payload, summary)
  SELECT $1, min(key_id), min(first_step), max(last_step), sum(count), sum(nan_count), min(min), max(max),
         (array_agg(first_value ORDER BY first_step))[1], (array_agg(last_value ORDER BY first_step DESC))[1],
         string_agg(payload, ''::bytea ORDER BY first_step), ($5::bytea[])[grp + 1]
  FROM parts GROUP BY grp
  RETURNING key_id, first_step, summary IS NULL AS unsummarized`;

interface PartRow {
  key_id: number;
  first_step: number;
  last_step: number;
  summary: Buffer | null;
}

/** The summary of consecutive chunks as one (null: one of them has none; see summarize). */
function joinedSummary(parts: readonly PartRow[]): Buffer | null {
  for (let i = 1; i < parts.length; i++)
    if (parts[i]!.first_step <= parts[i - 1]!.last_step) throw new RangeError('metric chunks overlap');
  return joinSummaries(parts.map((p) => ({ summary: p.summary, firstStep: p.first_step })));
}

/**
 * Which consecutive chunks to merge, as index lists into `counts` (a key's chunks in step order). Small chunks (at
 * most half of `sealed` points) gather until they hold `sealed`, so a merged chunk stays under 1.5 × `sealed`. A
 * gathering a bigger chunk stops, which cannot grow any more, is merged as it is (two or more chunks) or joins the
 * chunk before it (when it holds at most half of `sealed` and the two stay within 1.5 × `sealed`); so is the one at
 * the key's end once the run has ended (`final`, `atEnd`). Afterwards no two small chunks are neighbours, except at
 * a live key's end: the sweep looks for neighbours (foldPending).
 */
export function sealGroups(counts: readonly number[], final: boolean, atEnd: boolean, sealed = SEALED_POINTS) {
  const groups: number[][] = [];
  let cur: number[] = [];
  let sum = 0;
  const size = (g: readonly number[]) => g.reduce((a, i) => a + counts[i]!, 0);
  const rest = () => {
    if (cur.length) {
      const prev = cur[0]! - 1;
      const last = groups.at(-1);
      const joinsLast = last?.at(-1) === prev;
      const before = joinsLast ? size(last!) : prev >= 0 ? counts[prev]! : null;
      if (before !== null && sum <= sealed / 2 && before + sum <= 1.5 * sealed) {
        if (joinsLast) last!.push(...cur);
        else groups.push([prev, ...cur]);
      } else if (cur.length > 1) groups.push(cur);
    }
    cur = [];
    sum = 0;
  };
  for (let i = 0; i < counts.length; i++) {
    if (counts[i]! > sealed / 2) {
      rest();
      continue;
    }
    cur.push(i);
    sum += counts[i]!;
    if (sum >= sealed) {
      groups.push(cur);
      cur = [];
      sum = 0;
    }
  }
  if (atEnd && final) rest();
  return { groups, open: cur };
}

interface KeyCursor {
  keyId: number;
  /** The first chunk start to look at. */
  lo: number;
}

async function sealSlice(
  c: PoolClient,
  runNum: string,
  keys: readonly KeyCursor[],
  final: boolean,
  sealed: number,
): Promise<{ merged: number; more: KeyCursor[] }> {
  const lock = await c.query('SELECT 1 FROM run WHERE num = $1 FOR NO KEY UPDATE', [runNum]);
  if (!lock.rowCount) return { merged: 0, more: [] };
  await c.query('SET LOCAL jit = off');
  const heads = await c.query<{ key_id: number; first_step: number; count: number }>(HEADS_SQL, [
    runNum,
    keys.map((k) => k.keyId),
    keys.map((k) => k.lo),
    HEADS + 1,
  ]);
  const more: KeyCursor[] = [];
  const chosen: { keyId: number; starts: number[] }[] = [];
  for (const k of keys) {
    const all = heads.rows.filter((h) => h.key_id === k.keyId);
    const atEnd = all.length <= HEADS;
    const h = all.slice(0, HEADS);
    const { groups, open: gathering } = sealGroups(
      h.map((x) => x.count),
      final,
      atEnd,
      sealed,
    );
    // a page of tiny chunks that together hold under a sealed chunk (stored before sealing, say) would never reach
    // the next page: merged now, the merged chunk gathers on in the next slice
    const whole = !atEnd && !groups.length && gathering.length > 1 && gathering[0]! <= 1;
    if (whole) groups.push(gathering);
    for (const g of groups.slice(0, GROUPS)) chosen.push({ keyId: k.keyId, starts: g.map((i) => h[i]!.first_step) });
    // the next slice starts at the first group left, or (a full page) at the chunk before the open gathering, which
    // a final rest may join, or at the page merged whole; it must lie past where this one started, or the key is done
    const next =
      groups.length > GROUPS
        ? groups[GROUPS]![0]!
        : atEnd
          ? null
          : whole
            ? gathering[0]!
            : Math.max(0, (gathering[0] ?? h.length) - 1);
    const lo = next === null ? null : h[next]!.first_step;
    if (lo !== null && (groups.length > 0 || lo > k.lo)) more.push({ keyId: k.keyId, lo });
  }
  if (!chosen.length) return { merged: 0, more };
  const flat = chosen.flatMap((g, grp) => g.starts.map((s) => ({ k: g.keyId, s, grp })));
  const rows = await c.query<PartRow>(PARTS_SQL, [runNum, flat.map((x) => x.k), flat.map((x) => x.s)]);
  const byStart = new Map(rows.rows.map((r) => [`${r.key_id}:${r.first_step}`, r]));
  const summaries = chosen.map((g) => joinedSummary(g.starts.map((s) => byStart.get(`${g.keyId}:${s}`)!)));
  const made = await c.query<{ key_id: number; first_step: number; unsummarized: boolean }>(MERGE_SQL, [
    runNum,
    flat.map((x) => x.k),
    flat.map((x) => x.s),
    flat.map((x) => x.grp),
    summaries,
  ]);
  // a part without a summary (sparse, or stored before summaries): the merged chunk's comes from its points
  for (const m of made.rows.filter((r) => r.unsummarized)) await summarize(c, runNum, m.key_id, m.first_step);
  return { merged: flat.length, more };
}

async function summarize(c: PoolClient, runNum: string, keyId: number, firstStep: number): Promise<void> {
  const r = await c.query<{ payload: Buffer }>(
    'SELECT payload FROM metric_chunk WHERE run_num = $1 AND key_id = $2 AND first_step = $3',
    [runNum, keyId, firstStep],
  );
  const d = decodeChunk(r.rows[0]!.payload);
  await c.query('UPDATE metric_chunk SET summary = $4 WHERE run_num = $1 AND key_id = $2 AND first_step = $3', [
    runNum,
    keyId,
    firstStep,
    encodeSummary(d.steps, d.values),
  ]);
}

export interface SealOptions {
  /** The run has ended: merge what will not grow any more, too. */
  final?: boolean;
  /** Points of a sealed chunk (SEALED_POINTS). */
  sealed?: number;
}

/** Seals keys of one run: merges their small chunks. Idempotent. Returns how many chunks were merged away. */
export async function sealKeys(pool: Pool, runNum: string, keyIds: readonly number[], opts: SealOptions = {}) {
  const final = opts.final ?? false;
  const sealed = opts.sealed ?? SEALED_POINTS;
  let merged = 0;
  // chunks that do not merge (steps out of order: a bug) are left as they are
  await inSlices(
    [...new Set(keyIds)].map((keyId): KeyCursor => ({ keyId, lo: STEP_MIN })),
    SEAL_KEYS,
    async (group) => {
      const r = await withTransaction(pool, (c) => sealSlice(c, runNum, group, final, sealed));
      merged += r.merged;
      return r.more;
    },
    (key, e) => console.warn(`[metrics] run ${runNum}, key id ${key.keyId}: chunks left unsealed: ${e.message}`),
  );
  if (merged) noteChurn(pool, 'metric_chunk', merged);
  return merged;
}
