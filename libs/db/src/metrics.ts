import type { Pool, PoolClient } from 'pg';
import { foldedAmong } from './metric-chunks';
import { chunkFromBatch } from './metric-direct';
import { foldKeys } from './metric-fold';
import { CHUNK_POINTS } from './metric-write';
import { noteChurn } from './metric-vacuum';
import { metricFoldMode, metricFolder } from './metric-folder';
import { touchRun, withTransaction } from './touch';

/**
 * Rollup widths maintained at ingest: every power of two from 1,024 to 65,536 steps. A series query picks a
 * power-of-two bucket width, so for any width in that range it reads one rollup row per bucket, with no
 * aggregation at query time; wider buckets merge 65,536-step rollups. Narrower buckets of 64 to 512 steps come
 * from the chunks' summaries (metric-summary.ts), which cost a tenth of what rollup rows at those widths did; under
 * 64, from the points. Each level holds half the rows of the one below: all together about 2/1,024 of the points.
 */
export const ROLLUP_WIDTHS = [1024, 2048, 4096, 8192, 16384, 32768, 65536] as const;

export interface MetricPoint {
  key: string;
  step: number;
  value: number;
  /** Milliseconds since the epoch. */
  time?: number | undefined;
}

export interface InsertResult {
  /** Points stored by this call; a point already stored (same run, key, step) is skipped, not overwritten. */
  inserted: number;
  /** Points of the batch that were already stored (a retried batch) or repeated within it. */
  skipped: number;
  writeSeq: number;
}

/** Distinct metric keys one run may log (LIMITS.metricKeysPerRun in @aft/contracts says the same to clients). */
export const MAX_METRIC_KEYS_PER_RUN = 1_000;

/** A batch that would take its run past its cap on distinct metric keys; nothing of it is stored. */
export class MetricKeyCapError extends Error {
  constructor(
    readonly runId: string,
    readonly limit: number,
    have: number | null,
    adding: number,
  ) {
    const what =
      have === null
        ? `this batch logs ${adding} distinct metric keys`
        : `run ${runId} has ${have} metric keys and this batch adds ${adding} more`;
    super(`${what}; a run logs at most ${limit.toLocaleString('en-US')} distinct metric keys`);
  }
}

/**
 * Key ids remembered per pool (each database has its own ids). Bounded: every team's every key name would
 * otherwise stay in memory for the life of the process. A Map keeps insertion order, so re-inserting on use
 * makes its first entry the least recently used.
 */
export const KEY_CACHE_SIZE = 20_000;
const keyCache = new WeakMap<Pool, Map<string, number>>();

/** Entries the key-id cache of `pool` holds now (for tests). */
export const keyCacheSize = (pool: Pool) => keyCache.get(pool)?.size ?? 0;

/** Ids of metric key names, interned in metric_key (created if new); the result holds exactly `names`. */
export async function resolveKeyIds(pool: Pool, names: readonly string[]): Promise<Map<string, number>> {
  let cache = keyCache.get(pool);
  if (!cache) keyCache.set(pool, (cache = new Map()));
  const out = new Map<string, number>();
  const missing: string[] = [];
  for (const n of names) {
    const id = cache.get(n);
    if (id === undefined) missing.push(n);
    else {
      out.set(n, id);
      cache.delete(n);
      cache.set(n, id);
    }
  }
  if (missing.length) {
    await pool.query('INSERT INTO metric_key (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING', [
      missing,
    ]);
    const res = await pool.query<{ id: number; name: string }>('SELECT id, name FROM metric_key WHERE name = ANY($1)', [
      missing,
    ]);
    for (const r of res.rows) {
      out.set(r.name, r.id);
      cache.set(r.name, r.id);
    }
    for (const oldest of cache.keys()) {
      if (cache.size <= KEY_CACHE_SIZE) break;
      cache.delete(oldest);
    }
  }
  return out;
}

/** Refuses (MetricKeyCapError) a batch that would give the locked run more than `limit` distinct keys. */
async function assertKeyCap(c: PoolClient, runId: string, keys: readonly string[], limit: number) {
  const res = await c.query<{ total: number; present: number }>(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE key = ANY($2::text[]))::int AS present
     FROM run_metric WHERE run_id = $1`,
    [runId, keys],
  );
  const { total, present } = res.rows[0]!;
  const adding = keys.length - present;
  if (total + adding > limit) throw new MetricKeyCapError(runId, limit, total, adding);
}

interface Agg {
  count: number;
  nan: number;
  min: number | null;
  max: number | null;
  firstStep: number;
  firstValue: number;
  lastStep: number;
  lastValue: number;
}

function fold(a: Agg | undefined, step: number, value: number): Agg {
  const nan = Number.isNaN(value);
  if (!a) {
    return {
      count: 1,
      nan: nan ? 1 : 0,
      min: nan ? null : value,
      max: nan ? null : value,
      firstStep: step,
      firstValue: value,
      lastStep: step,
      lastValue: value,
    };
  }
  a.count++;
  if (nan) a.nan++;
  else {
    if (a.min === null || value < a.min) a.min = value;
    if (a.max === null || value > a.max) a.max = value;
  }
  if (step < a.firstStep) {
    a.firstStep = step;
    a.firstValue = value;
  }
  if (step > a.lastStep) {
    a.lastStep = step;
    a.lastValue = value;
  }
  return a;
}

/** Merges aggregate `b` into `a`. */
function merge(a: Agg, b: Agg): void {
  a.count += b.count;
  a.nan += b.nan;
  if (b.min !== null && (a.min === null || b.min < a.min)) a.min = b.min;
  if (b.max !== null && (a.max === null || b.max > a.max)) a.max = b.max;
  if (b.firstStep < a.firstStep) {
    a.firstStep = b.firstStep;
    a.firstValue = b.firstValue;
  }
  if (b.lastStep > a.lastStep) {
    a.lastStep = b.lastStep;
    a.lastValue = b.lastValue;
  }
}

const PLAIN_INSERT = `
  INSERT INTO metric_point (run_num, key_id, step, value, wall_time)
  SELECT $1, k, s, v, CASE WHEN ms IS NULL THEN now() ELSE to_timestamp(ms / 1000.0) END
  FROM unnest($2::int[], $3::int[], $4::float8[], $5::float8[]) AS t(k, s, v, ms)`;

const ROLLUP_UPSERT = `
  INSERT INTO metric_rollup AS r (run_num, key_id, width, bucket, count, nan_count, min, max,
                                  first_step, first_value, last_step, last_value)
  SELECT $1, * FROM unnest($2::int[], $3::int[], $4::int[], $5::int[], $6::int[], $7::float8[], $8::float8[],
                           $9::int[], $10::float8[], $11::int[], $12::float8[])
  ON CONFLICT (run_num, key_id, width, bucket) DO UPDATE SET
    count = r.count + excluded.count,
    nan_count = r.nan_count + excluded.nan_count,
    min = LEAST(r.min, excluded.min),
    max = GREATEST(r.max, excluded.max),
    first_step = LEAST(r.first_step, excluded.first_step),
    first_value = CASE WHEN excluded.first_step < r.first_step THEN excluded.first_value ELSE r.first_value END,
    last_step = GREATEST(r.last_step, excluded.last_step),
    last_value = CASE WHEN excluded.last_step > r.last_step THEN excluded.last_value ELSE r.last_value END`;

const KEYS_UPSERT = `
  INSERT INTO run_metric AS m (run_id, key, key_id, count, min_step, last_step, last_value, updated_at)
  SELECT $1, * , now() FROM unnest($2::text[], $3::int[], $4::int[], $5::int[], $6::int[], $7::float8[])
  ON CONFLICT (run_id, key) DO UPDATE SET
    count = m.count + excluded.count,
    min_step = LEAST(m.min_step, excluded.min_step),
    last_value = CASE WHEN excluded.last_step > m.last_step THEN excluded.last_value ELSE m.last_value END,
    last_step = GREATEST(m.last_step, excluded.last_step),
    updated_at = now()`;

/** A batch in columns: each key name once, then per point its key index, step, value and time (ms). */
export interface PointColumns {
  keys: readonly string[];
  key: readonly number[];
  step: readonly number[];
  value: readonly number[];
  time?: readonly (number | null)[] | undefined;
}

export function pointsToColumns(points: readonly MetricPoint[]): PointColumns {
  const index = new Map<string, number>();
  const keys: string[] = [];
  const cols = { key: [] as number[], step: [] as number[], value: [] as number[], time: [] as (number | null)[] };
  for (const p of points) {
    let k = index.get(p.key);
    if (k === undefined) {
      index.set(p.key, (k = keys.length));
      keys.push(p.key);
    }
    cols.key.push(k);
    cols.step.push(p.step);
    cols.value.push(p.value);
    cols.time.push(p.time ?? null);
  }
  return { keys, ...cols };
}

/**
 * A (key index in the batch, int4 step or bucket) as one exact double: the step offset to be non-negative, so a
 * negative step cannot collide with another key's (a batch holds at most 1,000 keys, far under 2^21).
 */
const pack = (k: number, x: number) => k * 2 ** 32 + (x + 2 ** 31);

/**
 * A Postgres array literal for numbers, built with one join: node-postgres would escape element by element,
 * which costs more than the insert itself at 10,000 points. NaN/Infinity/-Infinity print as Postgres reads them.
 */
function numArray(a: readonly (number | null)[]): string {
  // String(-0) is "0": a value of -0 would not be stored exactly
  return `{${a.map((v) => (v === null ? 'NULL' : v === 0 && 1 / v < 0 ? '-0' : v)).join(',')}}`;
}

/**
 * Stores a batch of points for one run, idempotently and fast:
 * - (run, key, step) is unique, so a retried batch stores each point once; a point repeated within the batch
 *   keeps its first value.
 * - Points already in chunks are dropped first (foldedAmong); a key's fresh points usually become chunks here
 *   (metric-direct.ts). The rest go to the tail as a plain multi-row INSERT from unnest(), about twice as fast as
 *   ON CONFLICT DO NOTHING; only on a unique violation (a retry) does it roll back to a savepoint and insert
 *   with ON CONFLICT DO NOTHING RETURNING, to learn which points are new.
 * - Rollups and per-key stats are folded here from exactly the points inserted, so a retry never double-counts,
 *   and upserted as a few hundred rows per batch.
 * - The run row is locked first: writers of one run are serialised, writers of different runs run in parallel.
 * Throws RunNotFoundError when the run does not exist or is outside `teamId`; then nothing is written.
 */
export async function insertMetricPoints(
  pool: Pool,
  runId: string,
  input: PointColumns | readonly MetricPoint[],
  /** fold: true folds a filled chunk in this request, false leaves it to the sweep; unset, AFT_METRIC_FOLD decides. */
  opts: { teamId?: string; maxKeys?: number; fold?: boolean } = {},
): Promise<InsertResult> {
  let cols = Array.isArray(input) ? pointsToColumns(input as readonly MetricPoint[]) : (input as PointColumns);
  if (new Set(cols.keys).size !== cols.keys.length) {
    // a key name listed twice: point both indices at its first listing
    const canon = cols.keys.map((k) => cols.keys.indexOf(k));
    cols = { ...cols, key: cols.key.map((k) => canon[k]!) };
  }
  const total = cols.key.length;
  const names = [...new Set(cols.keys)];
  const maxKeys = opts.maxKeys ?? MAX_METRIC_KEYS_PER_RUN;
  // a batch alone over the cap is refused before its names are interned (metric_key is shared by every team)
  if (names.length > maxKeys) throw new MetricKeyCapError(runId, maxKeys, null, names.length);
  const keyIds = await resolveKeyIds(pool, names);
  const idOf = cols.keys.map((k) => keyIds.get(k)!);
  let rows = distinctRows(cols);
  const mode = opts.fold === undefined ? metricFoldMode() : opts.fold ? 'write' : 'off';
  const byKey = (rs: readonly number[]) => {
    const m = new Map<number, number[]>();
    for (const i of rs) {
      const k = idOf[cols.key[i]!]!;
      const l = m.get(k);
      if (l) l.push(i);
      else m.set(k, [i]);
    }
    return [...m].map(([keyId, r]) => ({ keyId, rows: r }));
  };
  const result = await withTransaction(pool, async (c) => {
    const { num, writeSeq } = await touchRun(c, runId, opts.teamId);
    // checked under the run's lock, so concurrent batches of one run cannot together pass the cap
    await assertKeyCap(c, runId, names, maxKeys);
    // points already folded into chunks (a late retry): under the run's lock, which every fold takes too
    const folded = await foldedAmong(
      c,
      num,
      rows.map((i) => idOf[cols.key[i]!]!),
      rows.map((i) => cols.step[i]!),
    );
    if (folded.size) rows = rows.filter((i) => !folded.has(`${idOf[cols.key[i]!]!}:${cols.step[i]!}`));
    // a key's fresh points go straight to chunks (metric-direct.ts); the rest to the tail
    const direct = mode === 'off' ? null : await chunkFromBatch(c, num, byKey(rows), cols);
    const chunked = direct?.rows ?? new Set<number>();
    const tailRows = chunked.size === rows.length ? [] : chunked.size ? rows.filter((i) => !chunked.has(i)) : rows;
    const ks = numArray(tailRows.map((i) => idOf[cols.key[i]!]!));
    const steps = numArray(tailRows.map((i) => cols.step[i]!));
    const values = numArray(tailRows.map((i) => cols.value[i]!));
    const times = numArray(cols.time ? tailRows.map((i) => cols.time![i] ?? null) : tailRows.map(() => null));
    let inserted = rows;
    // a round trip a batch saved when nothing goes to the tail (the usual batch, metric-direct.ts)
    if (tailRows.length) await c.query('SAVEPOINT points');
    try {
      if (tailRows.length) await c.query(PLAIN_INSERT, [num, ks, steps, values, times]);
    } catch (e) {
      if ((e as { code?: string }).code !== '23505') throw e;
      await c.query('ROLLBACK TO SAVEPOINT points');
      const res = await c.query<{ key_id: number; step: number }>(
        `${PLAIN_INSERT} ON CONFLICT DO NOTHING RETURNING key_id, step`,
        [num, ks, steps, values, times],
      );
      // by key id (the database's, any size) and step
      const fresh = new Set(res.rows.map((r) => `${r.key_id}:${r.step}`));
      inserted = rows.filter((i) => chunked.has(i) || fresh.has(`${idOf[cols.key[i]!]!}:${cols.step[i]!}`));
    }
    const agg = inserted.length ? await foldAggregates(c, runId, num, cols, inserted, idOf) : null;
    const full = (agg?.filled ?? []).filter((k) => !direct?.keys.has(k));
    return {
      inserted: inserted.length,
      skipped: total - inserted.length,
      writeSeq,
      num,
      full,
      rollups: agg?.rollups ?? 0,
    };
  });
  // a key whose count just crossed a multiple of CHUNK_POINTS has a chunk's worth waiting (metric-folder.ts)
  if (result.full.length) {
    if (mode === 'write') await foldKeys(pool, result.num, result.full);
    else if (mode === 'background') metricFolder(pool).keysFilled(result.num, result.full);
  }
  noteChurn(pool, 'metric_rollup', result.rollups);
  return { inserted: result.inserted, skipped: result.skipped, writeSeq: result.writeSeq };
}

/** Indices of the batch's points without repeats of a (key, step), keeping the first of each. */
function distinctRows(cols: PointColumns): number[] {
  const n = cols.key.length;
  const all = new Array<number>(n);
  for (let i = 0; i < n; i++) all[i] = i;
  // fast path: each key's steps strictly increase (what a training loop sends), so nothing can repeat
  const last = new Array<number>(cols.keys.length).fill(-1);
  let increasing = true;
  for (let i = 0; i < n && increasing; i++) {
    const k = cols.key[i]!;
    increasing = cols.step[i]! > last[k]!;
    last[k] = cols.step[i]!;
  }
  if (increasing) return all;
  const seen = new Set<number>();
  return all.filter((i) => {
    const id = pack(cols.key[i]!, cols.step[i]!);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/**
 * Folds the inserted points into rollups and key stats; returns the key ids whose count crossed a chunk boundary,
 * and how many rollup rows it wrote.
 */
async function foldAggregates(
  c: PoolClient,
  runId: string,
  num: string,
  cols: PointColumns,
  rows: readonly number[],
  idOf: readonly number[],
): Promise<{ filled: number[]; rollups: number }> {
  type Rollup = Agg & { keyId: number; width: number; bucket: number };
  // finest level from the points, then each level from the one below (a bucket of 2w is two buckets of w)
  let level = new Map<number, Rollup>();
  const perKey = new Map<number, Agg>();
  // each key's bucket of its last point: a batch's points of a key mostly run in step order, so the map is looked
  // up once a bucket, not once a point
  const current: (Rollup | undefined)[] = [];
  const finest = ROLLUP_WIDTHS[0];
  for (const i of rows) {
    const k = cols.key[i]!;
    const step = cols.step[i]!;
    const value = cols.value[i]!;
    const bucket = Math.floor(step / finest);
    let a = current[k];
    if (a?.bucket !== bucket) {
      const id = pack(k, bucket);
      a = level.get(id);
      if (!a) level.set(id, (a = { ...fold(undefined, step, value), keyId: idOf[k]!, width: finest, bucket }));
      else fold(a, step, value);
      current[k] = a;
    } else fold(a, step, value);
    const ka = perKey.get(k);
    if (ka) fold(ka, step, value);
    else perKey.set(k, fold(undefined, step, value));
  }
  const agg: Rollup[] = [...level.values()];
  for (const width of ROLLUP_WIDTHS.slice(1)) {
    const next = new Map<number, Rollup>();
    for (const [id, a] of level) {
      const bucket = Math.floor(a.bucket / 2);
      const nid = id - a.bucket + bucket; // same key, parent bucket
      const b = next.get(nid);
      if (b) merge(b, a);
      else next.set(nid, { ...a, width, bucket });
    }
    agg.push(...next.values());
    level = next;
  }
  // a stable order keeps row locks in one order across writers
  agg.sort((a, b) => a.keyId - b.keyId || a.width - b.width || a.bucket - b.bucket);
  const col = <T>(f: (r: (typeof agg)[number]) => T) => agg.map(f);
  await c.query(ROLLUP_UPSERT, [
    num,
    col((r) => r.keyId),
    col((r) => r.width),
    col((r) => r.bucket),
    col((r) => r.count),
    col((r) => r.nan),
    col((r) => r.min),
    col((r) => r.max),
    col((r) => r.firstStep),
    col((r) => r.firstValue),
    col((r) => r.lastStep),
    col((r) => r.lastValue),
  ]);
  const ks = [...perKey.keys()].sort((a, b) => (cols.keys[a]! < cols.keys[b]! ? -1 : 1));
  const after = await c.query<{ key_id: number; count: number }>(`${KEYS_UPSERT} RETURNING key_id, count`, [
    runId,
    ks.map((k) => cols.keys[k]!),
    ks.map((k) => idOf[k]!),
    ks.map((k) => perKey.get(k)!.count),
    ks.map((k) => perKey.get(k)!.firstStep),
    ks.map((k) => perKey.get(k)!.lastStep),
    ks.map((k) => perKey.get(k)!.lastValue),
  ]);
  const added = new Map(ks.map((k) => [idOf[k]!, perKey.get(k)!.count]));
  const filled = after.rows
    .filter((r) => Math.floor(r.count / CHUNK_POINTS) > Math.floor((r.count - added.get(r.key_id)!) / CHUNK_POINTS))
    .map((r) => r.key_id);
  return { filled, rollups: agg.length };
}
