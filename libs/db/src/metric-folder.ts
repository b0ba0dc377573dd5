/**
 * When tail points are folded and chunks sealed (docs/architecture.md, "The metric store"). By default a background
 * folder in each process that writes points: a batch that fills a key's chunk, and a run that ends (whose chunks
 * are then sealed), queue work here and return at once; the folder folds in bounded slices (metric-fold.ts) off the
 * request path. A periodic sweep (startMetricSweep, one process of the cluster at a time) catches what a restarted
 * process forgot, seals live runs' chunks, and is the resumable migration step for points stored before chunks.
 * Nothing is lost if the folder never runs: reads merge chunks and tail.
 *
 * AFT_METRIC_FOLD: unset, `1` or `background` — the above; `write` — fold in the request that fills a chunk (ingest
 * is then about half as fast, since that request reads back, encodes and deletes its rows); `0` or `off` — never.
 */
import type { Pool } from 'pg';
import { encodeSummary } from './metric-summary';
import { decodeChunk } from './metric-codec';
import { foldKeys } from './metric-fold';
import { CHUNK_POINTS } from './metric-write';
import { sealedPoints, sealKeys } from './metric-seal';

export type MetricFoldMode = 'background' | 'write' | 'off';
export const METRIC_FOLD_VALUES = ['', '1', 'background', 'write', '0', 'off'] as const;

/** The fold mode AFT_METRIC_FOLD names (read on each call, so tests and benches can flip it). */
export function metricFoldMode(): MetricFoldMode {
  const v = process.env['AFT_METRIC_FOLD'] ?? '';
  if (v === 'write') return 'write';
  if (v === '0' || v === 'off') return 'off';
  return 'background';
}

/** A background folder: queued work, drained by one loop at a time per pool. */
class MetricFolder {
  private keys = new Map<string, Set<number>>(); // run num → keys that filled a chunk
  private ended = new Set<string>(); // run ids
  private loop: Promise<void> | null = null;

  constructor(private readonly pool: Pool) {}

  keysFilled(runNum: string, keyIds: readonly number[]): void {
    let s = this.keys.get(runNum);
    if (!s) this.keys.set(runNum, (s = new Set()));
    for (const k of keyIds) s.add(k);
    this.kick();
  }

  runEnded(runId: string): void {
    this.ended.add(runId);
    this.kick();
  }

  /** Resolves when nothing is queued or folding (tests and benches wait on it). */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  private kick(): void {
    // a macrotask later: the request that queued the work answers first, and a burst of batches coalesces
    this.loop ??= new Promise<void>((r) => setImmediate(r)).then(() => this.drain());
  }

  private async drain(): Promise<void> {
    try {
      // the two queues take turns, so ended runs are not held back behind steady ingest
      for (let turn = 0; this.keys.size || this.ended.size; turn++) {
        const [num, ks] = this.keys.entries().next().value ?? [];
        const runId = this.ended.values().next().value;
        if (num !== undefined && (turn % 2 === 0 || runId === undefined)) {
          this.keys.delete(num);
          await this.quietly(`run ${num}`, () => foldKeys(this.pool, num, [...ks!]));
        } else if (runId !== undefined) {
          this.ended.delete(runId);
          await this.quietly(`ended run ${runId}`, () => foldEndedRun(this.pool, runId));
        }
      }
    } finally {
      this.loop = null;
      if (this.keys.size || this.ended.size) this.kick();
    }
  }

  private async quietly(what: string, f: () => Promise<unknown>): Promise<void> {
    try {
      await f();
    } catch (e) {
      // the points stay in the tail, where reads find them; the next sweep folds them
      if (!/pool after calling end|terminat/i.test((e as Error).message))
        console.warn(`[metrics] folding ${what} failed; its points stay in the tail: ${(e as Error).message}`);
    }
  }
}

const folders = new WeakMap<Pool, MetricFolder>();

/** The background folder of `pool`'s process (created on first use). */
export function metricFolder(pool: Pool): MetricFolder {
  let f = folders.get(pool);
  if (!f) folders.set(pool, (f = new MetricFolder(pool)));
  return f;
}

/** Called where a run's status becomes terminal: its tail is folded in the background, unless folding is off. */
export function requestRunFold(pool: Pool, runId: string): void {
  if (metricFoldMode() !== 'off') metricFolder(pool).runEnded(runId);
}

/**
 * Folds all of an ended run's tail and seals all of its keys, in bounded slices, each its own transaction under the
 * run lock.
 */
export async function foldEndedRun(pool: Pool, runId: string): Promise<number> {
  const keys = await pool.query<{ num: string; key_id: number; tail: boolean }>(
    `SELECT r.num::text AS num, m.key_id,
            EXISTS (SELECT 1 FROM metric_point p WHERE p.run_num = r.num AND p.key_id = m.key_id) AS tail
     FROM run r JOIN run_metric m ON m.run_id = r.id WHERE r.id = $1 ORDER BY 2`,
    [runId],
  );
  if (!keys.rows.length) return 0;
  const num = keys.rows[0]!.num;
  const tail = keys.rows.filter((k) => k.tail).map((k) => k.key_id);
  const moved = tail.length ? await foldKeys(pool, num, tail, { force: true, seal: false }) : 0;
  await sealKeys(
    pool,
    num,
    keys.rows.map((k) => k.key_id),
    { final: true },
  );
  return moved;
}

/**
 * One resumable pass over the whole store (the migration step for points stored before chunks, and the periodic
 * sweep): folds every (run, key) holding a chunk's worth of tail, and seals every one with neighbouring small chunks
 * holding a sealed chunk's worth; of runs that have ended, all of both. Then gives chunks stored before summaries theirs. Each
 * slice is its own transaction, so an interrupted pass loses nothing. Finding the work reads every chunk's header
 * row (not its payload): about 20 ms per 100,000 chunks.
 */
export async function foldPending(pool: Pool, opts: { chunkPoints?: number } = {}): Promise<number> {
  const size = opts.chunkPoints ?? CHUNK_POINTS;
  const todo = await pendingWork(pool, size);
  let moved = 0;
  for (const t of todo) {
    try {
      moved += await foldKeys(pool, t.run_num, t.keys, { force: t.ended, chunkPoints: size });
      if (!t.ended) await sealKeys(pool, t.run_num, t.keys, { sealed: sealedPoints(size) });
    } catch (e) {
      // one run's failure (a lock timeout, say) must not stop the pass: its points stay in the tail for the next
      console.warn(`[metrics] sweep: folding run ${t.run_num} failed: ${(e as Error).message}`);
    }
  }
  await summarizeChunks(pool);
  return moved;
}

/** The runs with work for the sweep, and their keys that have it: tail to fold or chunks to seal. */
export async function pendingWork(pool: Pool, size = CHUNK_POINTS) {
  const r = await pool.query<{ run_num: string; keys: number[]; ended: boolean }>(
    `SELECT t.run_num::text AS run_num, array_agg(DISTINCT t.key_id ORDER BY t.key_id) AS keys,
            r.status NOT IN ('queued', 'running') AS ended
     FROM (SELECT run_num, key_id, count(*) >= $1 AS due FROM metric_point GROUP BY 1, 2
           UNION ALL
           -- neighbouring small chunks, which sealing leaves nowhere but at a live key's end; a live key is due
           -- when a pair lies before its last bigger chunk, or its small chunks after that hold a sealed chunk
           SELECT run_num, key_id,
                  bool_or(pair AND first_step < last_big)
                  OR sum(count) FILTER (WHERE small AND (last_big IS NULL OR first_step > last_big)) >= $2
           FROM (
             SELECT run_num, key_id, first_step, count, count <= $2 / 2 AS small,
                    count <= $2 / 2 AND lag(count) OVER (PARTITION BY run_num, key_id ORDER BY first_step) <= $2 / 2
                      AS pair,
                    max(first_step) FILTER (WHERE count > $2 / 2) OVER (PARTITION BY run_num, key_id) AS last_big
             FROM metric_chunk) c
           GROUP BY 1, 2 HAVING bool_or(pair)) t
     JOIN run r ON r.num = t.run_num
     WHERE t.due OR r.status NOT IN ('queued', 'running')
     GROUP BY t.run_num, r.status`,
    [size, sealedPoints(size)],
  );
  return r.rows;
}

/** Gives chunks written before summaries existed theirs, a few hundred per statement. */
export async function summarizeChunks(pool: Pool): Promise<number> {
  let done = 0;
  for (;;) {
    const rows = await pool.query<{ run_num: string; key_id: number; first_step: number; payload: Buffer }>(
      `SELECT run_num::text AS run_num, key_id, first_step, payload FROM metric_chunk WHERE summary IS NULL LIMIT 200`,
    );
    if (!rows.rows.length) return done;
    const sums = rows.rows.map((r) => {
      const d = decodeChunk(r.payload);
      return encodeSummary(d.steps, d.values);
    });
    // a chunk re-encoded meanwhile has a new row with its own summary; this one then matches nothing
    await pool.query(
      `UPDATE metric_chunk c SET summary = u.s FROM unnest($1::bigint[], $2::int[], $3::int[], $4::bytea[]) AS u(n, k, f, s)
       WHERE c.run_num = u.n AND c.key_id = u.k AND c.first_step = u.f AND c.summary IS NULL`,
      [rows.rows.map((r) => r.run_num), rows.rows.map((r) => r.key_id), rows.rows.map((r) => r.first_step), sums],
    );
    done += rows.rows.length;
  }
}

/** A lock only one sweeping process of the cluster holds at a time (session-level, on its own connection). */
const SWEEP_LOCK = 0x61667466; // 'aftf'

/**
 * Runs foldPending now (after `firstMs`) and every `everyMs` (AFT_METRIC_SWEEP_S, default 300 s), in the one
 * process of the cluster that holds the sweep lock at the time. Returns a stop function. Timers are unref'd.
 */
export function startMetricSweep(pool: Pool, opts: { everyMs?: number; firstMs?: number } = {}): () => void {
  const every = opts.everyMs ?? Number(process.env['AFT_METRIC_SWEEP_S'] ?? 300) * 1000;
  // the sweep holds one connection for its lock and folds on others: with fewer than 3 it would starve requests
  if ((pool.options.max ?? 10) < 3) {
    console.warn('[metrics] fold sweep off: it needs a database pool of 3 or more (AFT_DB_POOL)');
    return () => undefined;
  }
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const once = async () => {
    if (stopped || metricFoldMode() === 'off') return;
    const c = await pool.connect();
    try {
      const got = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [SWEEP_LOCK]);
      if (!got.rows[0]?.ok) return;
      try {
        await foldPending(pool);
      } finally {
        await c.query('SELECT pg_advisory_unlock($1)', [SWEEP_LOCK]);
      }
    } finally {
      c.release();
    }
  };
  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      once()
        .catch((e: unknown) => console.warn(`[metrics] fold sweep failed: ${(e as Error).message}`))
        .finally(() => schedule(every));
    }, ms);
    timer.unref();
  };
  schedule(opts.firstMs ?? 10_000);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
