import { createHash, randomBytes } from 'node:crypto';

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
