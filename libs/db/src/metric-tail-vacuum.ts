import type { Pool } from 'pg';

/**
 * Folded tail rows leave dead tuples, and the tail's primary-key index keeps every page it ever grew to until a
 * vacuum marks them free: without one (autovacuum off, or behind a burst of ingest) the tail's table and index grow
 * as if nothing were ever folded (33 of 43 bytes a point after 10M points, autovacuum off). So each process
 * vacuums the tail itself after every tailVacuumRows() rows its folds deleted (AFT_METRIC_TAIL_VACUUM_ROWS, default
 * 250,000). Plain VACUUM blocks no reader or writer; it runs on its own connection, with a session advisory lock
 * so one runs at a time across processes, SKIP_LOCKED so it never waits for a table lock, and TRUNCATE false so it
 * never takes the exclusive lock that cutting the file's end needs. A failure only leaves it to the next one.
 */
export const tailVacuumRows = () => Number(process.env['AFT_METRIC_TAIL_VACUUM_ROWS'] ?? 250_000);
const tailVacuum = new WeakMap<Pool, { deleted: number; running: Promise<void> | null }>();
const VACUUM_LOCK = 0x61667476; // 'aftv'

export function noteTailDeletes(pool: Pool, n: number): void {
  let v = tailVacuum.get(pool);
  if (!v) tailVacuum.set(pool, (v = { deleted: 0, running: null }));
  v.deleted += n;
  if (v.deleted < tailVacuumRows() || v.running) return;
  v.deleted = 0;
  const state = v;
  state.running = vacuumTail(pool)
    .catch(() => undefined)
    .finally(() => (state.running = null));
}

async function vacuumTail(pool: Pool): Promise<void> {
  const c = await pool.connect();
  try {
    const got = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [VACUUM_LOCK]);
    if (!got.rows[0]?.ok) return;
    try {
      // a request's statement_timeout would cut a long vacuum short, and its work with it
      await c.query('SET statement_timeout = 0');
      await c.query('VACUUM (SKIP_LOCKED, TRUNCATE false) metric_point');
    } finally {
      await c.query('RESET statement_timeout');
      await c.query('SELECT pg_advisory_unlock($1)', [VACUUM_LOCK]);
    }
  } finally {
    c.release();
  }
}

/** The tail vacuum this process has under way for `pool`, if any (tests and benches wait for it). */
export const tailVacuumDone = (pool: Pool): Promise<void> => tailVacuum.get(pool)?.running ?? Promise.resolve();
