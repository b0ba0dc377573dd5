import pg, { type Pool } from 'pg';

const { Client } = pg;

/**
 * The metric store's own vacuums (docs/architecture.md, "The metric store"). Three tables churn: folded tail rows
 * are deleted (`metric_point`), sealing deletes the small chunks it merged, TOAST rows and all (`metric_chunk`),
 * and every batch rewrites the rollup rows its steps fall in (`metric_rollup`). Their dead tuples, and the index
 * pages that point at them, are reused only once a vacuum has marked them free: without one (autovacuum off, or
 * behind a burst of ingest) the tail grows as if nothing were ever folded (33 of 43 bytes a point after 10M points)
 * and the chunks as if each point were stored twice. So each process vacuums a table itself once the rows it
 * deleted or rewrote there pass the table's threshold. Plain VACUUM blocks no reader or writer; it runs on a
 * connection of its own (not one of the pool's), with a session advisory lock so one per table runs at a time
 * across processes, SKIP_LOCKED so it
 * never waits for a table lock, and TRUNCATE false so it never takes the exclusive lock that cutting the file's end
 * needs. A failure only leaves it to the next one.
 */
const TABLES = {
  // rows folded out of the tail
  metric_point: { lock: 0x61667476, every: () => threshold('AFT_METRIC_TAIL_VACUUM_ROWS', 250_000) },
  // chunk rows merged away by sealing or replaced by a fold (about 5M points' worth)
  metric_chunk: { lock: 0x61667463, every: () => threshold('AFT_METRIC_CHUNK_VACUUM_ROWS', 5_000) },
  // rollup rows a batch inserted or updated (about 70 for a 10,000-point batch of 10 keys)
  metric_rollup: { lock: 0x61667472, every: () => threshold('AFT_METRIC_ROLLUP_VACUUM_ROWS', 50_000) },
} as const;
export type ChurnedTable = keyof typeof TABLES;

/**
 * A threshold from the environment: a whole number from 1 to 10^9, else the default (the web app refuses such a
 * value at start, apps/web/src/env.ts; a NaN here would start a vacuum after every batch).
 */
function threshold(name: string, fallback: number): number {
  const v = Number(process.env[name] ?? fallback);
  return Number.isInteger(v) && v >= 1 && v <= 1e9 ? v : fallback;
}

/** Rows a table's folds deleted before this process vacuums it (metric_point: AFT_METRIC_TAIL_VACUUM_ROWS). */
export const tailVacuumRows = () => TABLES.metric_point.every();

const state = new WeakMap<Pool, Map<ChurnedTable, { churned: number; running: Promise<void> | null }>>();

/** Counts `n` rows deleted or rewritten in `table`, and starts its vacuum when they pass its threshold. */
export function noteChurn(pool: Pool, table: ChurnedTable, n: number): void {
  let tables = state.get(pool);
  if (!tables) state.set(pool, (tables = new Map()));
  let v = tables.get(table);
  if (!v) tables.set(table, (v = { churned: 0, running: null }));
  v.churned += n;
  if (v.churned < TABLES[table].every() || v.running) return;
  v.churned = 0;
  const s = v;
  s.running = vacuum(pool, table)
    .catch(() => undefined)
    .finally(() => (s.running = null));
}

async function vacuum(pool: Pool, table: ChurnedTable): Promise<void> {
  // a connection of its own, not the pool's: a vacuum of a big table takes minutes, and requests need the pool
  const c = new Client({ ...pool.options, statement_timeout: 0 });
  await c.connect();
  try {
    // the lock is the session's, so it goes when the connection does
    const got = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [TABLES[table].lock]);
    if (got.rows[0]?.ok) await c.query(`VACUUM (SKIP_LOCKED, TRUNCATE false) ${table}`);
  } finally {
    await c.end();
  }
}

/** The vacuums this process has under way for `pool`, if any (tests and benches wait for them). */
export const metricVacuumsDone = async (pool: Pool): Promise<void> => {
  await Promise.all([...(state.get(pool)?.values() ?? [])].map((v) => v.running));
};
