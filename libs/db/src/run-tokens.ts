/**
 * Run tokens: the credential a training job carries. One is made when its run is queued (in the same transaction),
 * travels in the job's payload, and lets whichever worker takes the job log to that run, start and finish it, and
 * read the runs it trains from (its VFT parent, the run it forks) — nothing else. So a worker needs no team key and
 * serves every team. Only the SHA-256 is stored (the token has 192 bits of entropy); a token expires, and is
 * deleted by the statement that ends its run (REVOKE_ENDED in run-writes.ts, used by every status update in
 * libs/db). A token is also refused whenever its run is not queued or running, whatever ended it.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';

/** Run tokens start with this, so a request's credential says which kind it is without a lookup. */
export const RUN_TOKEN_PREFIX = 'aftrun_';

/** How long a queued run's token lasts: a sweep's alignment runs wait for their parent, a queue may be long. */
export const RUN_TOKEN_TTL_DAYS = 30;

export function isRunToken(credential: string): boolean {
  return credential.startsWith(RUN_TOKEN_PREFIX);
}

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** Makes and stores a token for each run (inside the caller's transaction); returns them by run id. */
export async function createRunTokens(
  c: PoolClient | Pool,
  runIds: readonly string[],
  ttlDays = RUN_TOKEN_TTL_DAYS,
): Promise<Map<string, string>> {
  const tokens = new Map(runIds.map((id) => [id, `${RUN_TOKEN_PREFIX}${randomBytes(24).toString('base64url')}`]));
  if (!runIds.length) return tokens;
  await c.query(
    `INSERT INTO run_token (hash, run_id, expires_at)
     SELECT h, r, now() + make_interval(days => $3) FROM unnest($1::text[], $2::text[]) AS t(h, r)`,
    [[...tokens.values()].map(hashToken), [...tokens.keys()], ttlDays],
  );
  return tokens;
}

/** What a valid run token may touch: its run (read and write), and the runs it reads from. */
export interface RunGrant {
  runId: string;
  teamId: string;
  /** Its run, the VFT parent, and the run it was forked from. */
  readable: string[];
}

/** The grant behind a token, or null when it is unknown, expired, or its run has ended. */
export async function resolveRunToken(pool: Pool, token: string): Promise<RunGrant | null> {
  const res = await pool.query<{
    run_id: string;
    team_id: string;
    parent_run_id: string | null;
    fork_of: string | null;
  }>(
    `SELECT r.id AS run_id, p.team_id, r.parent_run_id, r.config->>'forkOf' AS fork_of
     FROM run_token t JOIN run r ON r.id = t.run_id JOIN project p ON p.id = r.project_id
     WHERE t.hash = $1 AND t.expires_at > now() AND r.status IN ('queued', 'running')`,
    [hashToken(token)],
  );
  const row = res.rows[0];
  if (!row) return null;
  const readable = [row.run_id, row.parent_run_id, row.fork_of].filter((x): x is string => typeof x === 'string');
  return { runId: row.run_id, teamId: row.team_id, readable: [...new Set(readable)] };
}

/** Deletes a run's tokens (inside the caller's transaction), for status writers outside libs/db's own. */
export async function revokeRunTokens(c: PoolClient | Pool, runId: string): Promise<void> {
  await c.query('DELETE FROM run_token WHERE run_id = $1', [runId]);
}
