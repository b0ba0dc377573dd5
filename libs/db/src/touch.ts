import type { Pool, PoolClient } from 'pg';

/**
 * The one rule for writes to a run (docs/architecture.md, "Live updates"): every write bumps the run's `write_seq`
 * and `updated_at` and announces the run id on RUN_CHANNEL, in the transaction that writes. Writers that run one
 * statement use TOUCH_SET and NOTIFY_RUN inside it; writers that run several use `touchRun` (or `writeToRun`).
 */

/** The Postgres NOTIFY channel on which every write to a run announces the run id. */
export const RUN_CHANNEL = 'aft_run_update';

/** The SET clause every run write carries (a write by the run's trainer also counts as a sign of life). */
export const TOUCH_SET = `write_seq = write_seq + 1, updated_at = now()`;

/** `pg_notify` of the row's id, for the RETURNING or SELECT list of a one-statement write. */
export const NOTIFY_RUN = (idColumn: string) => `pg_notify('${RUN_CHANNEL}', ${idColumn})`;

export class RunNotFoundError extends Error {
  constructor(readonly runId: string) {
    super(`run ${runId} not found`);
  }
}

const TOUCH_SQL = `UPDATE run SET ${TOUCH_SET}, heartbeat_at = now()
  WHERE id = $1 AND ($2::text IS NULL OR project_id IN (SELECT id FROM project WHERE team_id = $2))
  RETURNING num::text AS num, write_seq, ${NOTIFY_RUN('id')}`;

/**
 * Locks the run row for the rest of the transaction, bumps its write sequence and queues its announcement
 * (Postgres delivers a NOTIFY at commit, so a rolled-back write announces nothing). Without `teamId` the run is
 * addressed by id alone — only for callers that have already checked access. Throws RunNotFoundError on a miss.
 */
export async function touchRun(
  c: Pick<PoolClient, 'query'>,
  runId: string,
  teamId?: string | null,
): Promise<{ num: string; writeSeq: number }> {
  const res = await c.query<{ num: string; write_seq: number }>(TOUCH_SQL, [runId, teamId ?? null]);
  const row = res.rows[0];
  if (!row) throw new RunNotFoundError(runId);
  return { num: row.num, writeSeq: row.write_seq };
}

export async function withTransaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query(begin);
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    c.release();
  }
}

/** A read-only transaction whose statements all see one snapshot (a read of chunks and tail while a fold runs). */
export const withSnapshot = <T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> =>
  withTransaction(pool, fn, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');

/** One transaction that writes to a run: touched (locked, bumped, announced) first, then `fn`. */
export function writeToRun<T>(
  pool: Pool,
  runId: string,
  teamId: string | null | undefined,
  fn: (c: PoolClient, run: { num: string; writeSeq: number }) => Promise<T>,
): Promise<T> {
  return withTransaction(pool, async (c) => fn(c, await touchRun(c, runId, teamId)));
}
