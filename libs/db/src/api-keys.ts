/**
 * API keys: a team's credentials for trainers, workers and scripts, each with scopes. Looked up on every request
 * (never cached: a revoked key is refused on its next request, by every server); created and revoked by owners in
 * the transaction that records it in the audit log.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { PoolClient } from 'pg';
import type { Db } from './client';

export const API_KEY_SCOPES = ['log', 'launch', 'read'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

/**
 * A new API key: `aft_<prefix>_<secret>`. Only the SHA-256 of the whole key is stored — the key has 190 bits of
 * entropy, so a fast hash is enough (a password hash protects low-entropy secrets); the prefix names it in lists.
 */
export function generateApiKey(): { key: string; prefix: string; hash: string } {
  const prefix = randomBytes(6).toString('base64url');
  const secret = randomBytes(24).toString('base64url');
  const key = `aft_${prefix}_${secret}`;
  return { key, prefix, hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** A key as a request presents it: whose it is, what it may do, and whether it is refused. */
export interface ApiKeyRecord {
  id: string;
  teamId: string;
  scopes: ApiKeyScope[];
  revoked: boolean;
  /** Its last use was recorded over a minute ago (or never): time to record it again. */
  stale: boolean;
}

/** The stored key matching `key` (by its hash), revoked or not; null when there is none. */
export async function findApiKey(db: Pick<Db, 'pool'>, key: string): Promise<ApiKeyRecord | null> {
  const res = await db.pool.query<ApiKeyRecord>(
    `SELECT id, team_id AS "teamId", scopes, revoked_at IS NOT NULL AS revoked,
            (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') AS stale
     FROM api_key WHERE hash = $1`,
    [hashApiKey(key)],
  );
  return res.rows[0] ?? null;
}

/** Records that a key was just used (for the keys list; callers do it at most once a minute, see `stale`). */
export async function markApiKeyUsed(db: Pick<Db, 'pool'>, keyId: string): Promise<void> {
  await db.pool.query('UPDATE api_key SET last_used_at = now() WHERE id = $1', [keyId]);
}

/** A team's keys, newest first, without their hashes. */
export function listApiKeys(db: Pick<Db, 'prisma'>, teamId: string) {
  return db.prisma.apiKey.findMany({
    where: { teamId },
    select: { id: true, name: true, prefix: true, scopes: true, createdAt: true, lastUsedAt: true, revokedAt: true },
    orderBy: { createdAt: 'desc' },
    take: 500,
  });
}

/** Makes and stores a new key for a team (pass a transaction's client to audit it alongside); the key is shown once. */
export async function createApiKey(
  c: Pick<PoolClient, 'query'>,
  k: { teamId: string; name: string; scopes: readonly ApiKeyScope[] },
): Promise<{ id: string; prefix: string; key: string }> {
  const { key, prefix, hash } = generateApiKey();
  const id = `k${randomBytes(12).toString('hex')}`;
  await c.query('INSERT INTO api_key (id, team_id, name, prefix, hash, scopes) VALUES ($1, $2, $3, $4, $5, $6)', [
    id,
    k.teamId,
    k.name,
    prefix,
    hash,
    k.scopes,
  ]);
  return { id, prefix, key };
}

/** Revokes one of the team's keys (inside the caller's transaction); its name and prefix, or null if none was live. */
export async function revokeApiKey(
  c: Pick<PoolClient, 'query'>,
  teamId: string,
  id: string,
): Promise<{ name: string; prefix: string } | null> {
  const res = await c.query<{ name: string; prefix: string }>(
    'UPDATE api_key SET revoked_at = now() WHERE id = $1 AND team_id = $2 AND revoked_at IS NULL RETURNING name, prefix',
    [id, teamId],
  );
  return res.rows[0] ?? null;
}
