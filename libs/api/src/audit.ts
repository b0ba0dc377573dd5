import type { Db } from '@aft/db';

export type AuditAction =
  | 'user.sign_up'
  | 'user.sign_in'
  | 'user.sign_in_failed'
  | 'team.create'
  | 'key.create'
  | 'key.revoke'
  | 'invitation.create'
  | 'invitation.revoke'
  | 'member.join'
  | 'member.role'
  | 'member.remove'
  | 'run.delete';

export interface AuditEntry {
  teamId?: string | null;
  userId?: string | null;
  keyId?: string | null;
  action: AuditAction;
  target?: string | null;
  details?: Record<string, unknown>;
  ip?: string | null;
}

type Queryable = Pick<Db['pool'], 'query'>;

/** Appends one audit event (pass a transaction's client to make it part of the change it records). */
export async function audit(db: Db | { pool: Queryable }, e: AuditEntry, client: Queryable = db.pool): Promise<void> {
  await client.query(
    `INSERT INTO audit_event (team_id, user_id, key_id, action, target, details, ip) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      e.teamId ?? null,
      e.userId ?? null,
      e.keyId ?? null,
      e.action,
      e.target ?? null,
      JSON.stringify(e.details ?? {}),
      e.ip ?? null,
    ],
  );
}
