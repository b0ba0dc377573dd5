/**
 * The audit log (`audit_event`): who did what to a team. A change to who can do what is recorded in the same
 * transaction as the change, so pass that transaction's client to `recordAuditEvent`; libs/api's `audit` is the
 * door the routers use.
 */
import type { PoolClient } from 'pg';
import type { Db } from './client';

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
  | 'run.delete'
  | 'alert.create'
  | 'alert.update'
  | 'alert.delete'
  | 'view.create'
  | 'view.rename'
  | 'view.delete';

export interface AuditEntry {
  teamId?: string | null;
  userId?: string | null;
  keyId?: string | null;
  action: AuditAction;
  target?: string | null;
  details?: Record<string, unknown>;
  ip?: string | null;
}

/** Appends one audit event through `client`: the pool, or a transaction's client to make it part of the change. */
export async function recordAuditEvent(client: Pick<PoolClient, 'query'>, e: AuditEntry): Promise<void> {
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

/** One event as the team's owners read it: who acted, by their email or their key's name. */
export interface AuditEventRow {
  id: string;
  action: string;
  target: string | null;
  details: Record<string, unknown>;
  ip: string | null;
  createdAt: Date;
  user: string | null;
  key: string | null;
}

/**
 * A page of the team's audit log, newest first: its own events and the account events (sign-ins) of its members.
 * `cursor` is the `nextCursor` of the previous page (an event id); null when there is no further page.
 */
export async function listAuditEvents(
  db: Pick<Db, 'pool'>,
  teamId: string,
  page: { limit: number; cursor?: string | null },
): Promise<{ items: AuditEventRow[]; nextCursor: string | null }> {
  const res = await db.pool.query<AuditEventRow>(
    `SELECT e.id::text AS id, e.action, e.target, e.details, e.ip, e.created_at AS "createdAt", u.email AS user, k.name AS key
     FROM audit_event e LEFT JOIN app_user u ON u.id = e.user_id LEFT JOIN api_key k ON k.id = e.key_id
     WHERE (e.team_id = $1 OR (e.team_id IS NULL AND e.user_id IN (SELECT user_id FROM membership WHERE team_id = $1)))
       AND ($2::bigint IS NULL OR e.id < $2::bigint)
     ORDER BY e.id DESC LIMIT $3`,
    [teamId, page.cursor ?? null, page.limit + 1],
  );
  const items = res.rows.slice(0, page.limit);
  return { items, nextCursor: res.rows.length > page.limit ? items[items.length - 1]!.id : null };
}
