/**
 * The audit log's door for the routers: who did what to a team. The statement and the entry's shape live in
 * libs/db (audit-log.ts), which owns all SQL (docs/architecture.md, "Layers").
 */
import { recordAuditEvent, type AuditEntry, type Db } from '@aft/db';

export type { AuditAction, AuditEntry } from '@aft/db';

type Queryable = Pick<Db['pool'], 'query'>;

/** Appends one audit event (pass a transaction's client to make it part of the change it records). */
export async function audit(db: Db | { pool: Queryable }, e: AuditEntry, client: Queryable = db.pool): Promise<void> {
  await recordAuditEvent(client, e);
}
