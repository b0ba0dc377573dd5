/**
 * Sign-in attempts counted per key (an account, `email:…`, and a client address, `ip:…`) in fixed windows, in
 * Postgres so that every web server shares the counts. An attempt is counted before the password is checked, in
 * one statement, so parallel requests cannot all slip under the limit; a successful sign-in then gives its
 * attempt back, which leaves failures (and attempts still in flight) counted.
 */
import type { Db } from './client';

export interface ThrottleRule {
  /** Attempts allowed per window. */
  max: number;
  windowS: number;
}

export interface ThrottleRefusal {
  key: string;
  /** Seconds until the window that refused ends. */
  retryAfterS: number;
}

/**
 * Counts one attempt against each key in turn and stops at the first that is over its limit (later keys are not
 * counted, so an address that is refused cannot fill the table with rows for made-up accounts).
 */
export async function countSignInAttempt(
  db: Pick<Db, 'pool'>,
  keys: { key: string; rule: ThrottleRule }[],
): Promise<ThrottleRefusal | null> {
  for (const { key, rule } of keys) {
    const res = await db.pool.query<{ attempts: number; retryAfterS: number }>(
      `INSERT INTO sign_in_throttle AS t (key, attempts, window_start) VALUES ($1, 1, now())
       ON CONFLICT (key) DO UPDATE SET
         attempts = CASE WHEN t.window_start <= now() - make_interval(secs => $2) THEN 1 ELSE t.attempts + 1 END,
         window_start = CASE WHEN t.window_start <= now() - make_interval(secs => $2) THEN now() ELSE t.window_start END
       RETURNING attempts,
         ceil(extract(epoch FROM window_start + make_interval(secs => $2) - now()))::int AS "retryAfterS"`,
      [key, rule.windowS],
    );
    const row = res.rows[0]!;
    if (row.attempts > rule.max) return { key, retryAfterS: Math.max(1, row.retryAfterS) };
  }
  // stale windows are pruned now and then rather than by a job: the table only grows with attempts
  if (Math.random() < 0.01) {
    const longest = Math.max(...keys.map((k) => k.rule.windowS));
    await db.pool.query(`DELETE FROM sign_in_throttle WHERE window_start < now() - make_interval(secs => $1)`, [
      longest,
    ]);
  }
  return null;
}

/** Gives back one counted attempt (the sign-in it counted succeeded). */
export async function refundSignInAttempt(db: Pick<Db, 'pool'>, key: string): Promise<void> {
  await db.pool.query('UPDATE sign_in_throttle SET attempts = GREATEST(attempts - 1, 0) WHERE key = $1', [key]);
}

/** Forgets a key's attempts (the account's owner proved their password). */
export async function clearSignInAttempts(db: Pick<Db, 'pool'>, key: string): Promise<void> {
  await db.pool.query('DELETE FROM sign_in_throttle WHERE key = $1', [key]);
}
