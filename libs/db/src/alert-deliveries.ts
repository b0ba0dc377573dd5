/**
 * Alert firings and their delivery log (docs/architecture.md, "Alerts"). A firing is an `alert_delivery` row, unique
 * per (rule, kind, subject), so that a run fires a rule once however often its trigger is written. The worker that
 * posts a firing proves itself with the firing's own token (only its SHA-256 is kept): it claims each attempt here
 * and reports how it went.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from './client';

export const hashAlertToken = (token: string) => createHash('sha256').update(token).digest('hex');
const newAlertToken = () => `aftdl_${randomBytes(24).toString('base64url')}`;

/** A delivery as the log shows it. */
export interface AlertDeliveryRow {
  id: string;
  ruleId: string;
  ruleName: string;
  kind: string;
  runId: string | null;
  runName: string | null;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: Date;
  lastAttemptAt: Date | null;
  deliveredAt: Date | null;
}

/** The project's latest deliveries, newest first (the caller checked that the project is the team's). */
export async function listAlertDeliveries(db: Db, projectId: string, limit: number): Promise<AlertDeliveryRow[]> {
  const res = await db.pool.query<AlertDeliveryRow>(
    `SELECT d.id, d.rule_id AS "ruleId", r.name AS "ruleName", d.kind, d.run_id AS "runId",
            d.payload #>> '{run,name}' AS "runName", d.attempts, d.last_status AS "lastStatus",
            d.last_error AS "lastError", d.created_at AS "createdAt", d.last_attempt_at AS "lastAttemptAt",
            d.delivered_at AS "deliveredAt"
     FROM alert_delivery d JOIN alert_rule r ON r.id = d.rule_id
     WHERE d.project_id = $1 ORDER BY d.created_at DESC, d.id LIMIT $2`,
    [projectId, limit],
  );
  return res.rows;
}

/** An enabled rule that `kind` happening to a run would fire and has not fired for it yet, with what it reports. */
export interface AlertCandidate {
  ruleId: string;
  ruleName: string;
  kind: string;
  metricKey: string | null;
  op: string | null;
  threshold: number | null;
  projectId: string;
  projectName: string;
  runId: string;
  runName: string;
  runStatus: string;
  sweepId: string | null;
  sweepName: string | null;
}

/**
 * The project's enabled rules of `kind` that have not fired for this run (for `sweep-finished`: its sweep), when
 * the run is the team's. `metricKeys` narrows metric-threshold rules to the keys of a batch. One indexed read: it
 * is on the path of every metric batch.
 */
export async function alertCandidates(
  db: Db,
  teamId: string,
  runId: string,
  kind: string,
  metricKeys: readonly string[] | null = null,
): Promise<AlertCandidate[]> {
  const res = await db.pool.query<AlertCandidate>(
    `SELECT r.id AS "ruleId", r.name AS "ruleName", r.kind, r.metric_key AS "metricKey", r.op, r.threshold,
            p.id AS "projectId", p.name AS "projectName", u.id AS "runId", u.name AS "runName",
            u.status::text AS "runStatus", u.sweep_id AS "sweepId", s.name AS "sweepName"
     FROM run u JOIN project p ON p.id = u.project_id
     JOIN alert_rule r ON r.project_id = p.id AND r.kind = $3 AND r.enabled
     LEFT JOIN sweep s ON s.id = u.sweep_id
     WHERE u.id = $1 AND p.team_id = $2
       AND ($3 <> 'sweep-finished' OR u.sweep_id IS NOT NULL)
       AND ($4::text[] IS NULL OR r.metric_key = ANY($4::text[]))
       AND NOT EXISTS (SELECT 1 FROM alert_delivery d WHERE d.rule_id = r.id AND d.kind = r.kind
         AND d.subject = CASE WHEN r.kind = 'sweep-finished' THEN 'sweep:' || u.sweep_id ELSE 'run:' || u.id END)`,
    [runId, teamId, kind, metricKeys],
  );
  return res.rows;
}

/** How many runs of a sweep have each status (what `sweepStatus` reads). */
export async function sweepRunCounts(db: Db, sweepId: string): Promise<Record<string, number>> {
  const res = await db.pool.query<{ status: string; n: number }>(
    `SELECT status::text AS status, count(*)::int AS n FROM run WHERE sweep_id = $1 GROUP BY status`,
    [sweepId],
  );
  return Object.fromEntries(res.rows.map((r) => [r.status, r.n]));
}

export interface NewAlertFiring {
  ruleId: string;
  projectId: string;
  kind: string;
  /** What fires once: `run:<id>`, `sweep:<id>`; a test send gets `test:<its id>`. */
  subject: string | null;
  runId: string | null;
  payload: Record<string, unknown>;
}

/** A firing just recorded: its delivery id and the token its worker presents. */
export interface AlertFiring {
  deliveryId: string;
  token: string;
  ruleId: string;
}

/** Records firings as pending deliveries; returns those that are new (a subject fires each rule once). */
export async function recordAlertFirings(db: Db, firings: readonly NewAlertFiring[]): Promise<AlertFiring[]> {
  if (!firings.length) return [];
  const rows = firings.map((f) => {
    const id = `ad${randomBytes(11).toString('hex')}`;
    return { ...f, id, token: newAlertToken(), subject: f.subject ?? `test:${id}` };
  });
  const col = <K extends keyof (typeof rows)[number]>(k: K) => rows.map((r) => r[k]);
  const res = await db.pool.query<{ id: string }>(
    `INSERT INTO alert_delivery (id, rule_id, project_id, kind, subject, run_id, payload, token_hash)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::text[])
     ON CONFLICT (rule_id, kind, subject) DO NOTHING RETURNING id`,
    [
      col('id'),
      col('ruleId'),
      col('projectId'),
      col('kind'),
      col('subject'),
      col('runId'),
      rows.map((r) => JSON.stringify(r.payload)),
      rows.map((r) => hashAlertToken(r.token)),
    ],
  );
  const fresh = new Set(res.rows.map((r) => r.id));
  return rows.filter((r) => fresh.has(r.id)).map((r) => ({ deliveryId: r.id, token: r.token, ruleId: r.ruleId }));
}

/** What an attempt sends: the rule's address and key, and the event. */
export interface AlertAttempt {
  id: string;
  attempt: number;
  kind: string;
  payload: Record<string, unknown>;
  url: string;
  secret: string;
}

/**
 * Starts an attempt of a pending delivery: counts it and returns what to send. `done` when there is nothing to
 * send: delivered already, or its rule disabled (a test send goes out anyway); null when the id and token do not
 * match a delivery (its rule deleted, or a forged token).
 */
export async function claimAlertAttempt(
  db: Db,
  id: string,
  token: string,
): Promise<AlertAttempt | { done: string } | null> {
  const res = await db.pool.query<AlertAttempt>(
    `UPDATE alert_delivery d SET attempts = d.attempts + 1, last_attempt_at = now()
     FROM alert_rule r
     WHERE d.id = $1 AND d.token_hash = $2 AND r.id = d.rule_id AND d.delivered_at IS NULL
       AND (r.enabled OR d.kind = 'test')
     RETURNING d.id, d.attempts AS attempt, d.kind, d.payload, r.url, r.secret`,
    [id, hashAlertToken(token)],
  );
  if (res.rows[0]) return res.rows[0];
  const why = await db.pool.query<{ delivered: boolean }>(
    `SELECT d.delivered_at IS NOT NULL AS delivered FROM alert_delivery d WHERE d.id = $1 AND d.token_hash = $2`,
    [id, hashAlertToken(token)],
  );
  const row = why.rows[0];
  if (!row) return null;
  if (row.delivered) return { done: 'delivered already' };
  await db.pool.query(`UPDATE alert_delivery SET last_error = 'not sent: the rule is disabled' WHERE id = $1`, [id]);
  return { done: 'the rule is disabled' };
}

/**
 * Records how an attempt went: the receiver's status code or the error; `delivered` sets the delivery time once.
 * False when the id and token match no delivery.
 */
export async function reportAlertAttempt(
  db: Db,
  id: string,
  token: string,
  r: { status: number | null; error: string | null; delivered: boolean },
): Promise<boolean> {
  const res = await db.pool.query(
    `UPDATE alert_delivery SET last_status = $3, last_error = $4,
       delivered_at = CASE WHEN $5 THEN COALESCE(delivered_at, now()) ELSE delivered_at END
     WHERE id = $1 AND token_hash = $2`,
    [id, hashAlertToken(token), r.status, r.error, r.delivered],
  );
  return (res.rowCount ?? 0) > 0;
}

/** Notes on a delivery that it could not be queued (Redis away); it stays pending until queued again. */
export async function markAlertUnqueued(db: Db, ids: readonly string[], why: string): Promise<void> {
  await db.pool.query(`UPDATE alert_delivery SET last_error = $2 WHERE id = ANY($1::text[])`, [ids, why]);
}

/**
 * Deliveries that may never have been queued: pending, never attempted, fired between `afterMs` and `withinMs` ago,
 * of a rule that would still send them; oldest first. The caller asks the queue which of them it holds.
 */
export async function unattemptedAlertDeliveries(
  db: Db,
  o: { afterMs: number; withinMs: number; batch: number },
): Promise<{ id: string; tokenHash: string }[]> {
  const res = await db.pool.query<{ id: string; tokenHash: string }>(
    `SELECT d.id, d.token_hash AS "tokenHash" FROM alert_delivery d JOIN alert_rule r ON r.id = d.rule_id
     WHERE d.delivered_at IS NULL AND d.attempts = 0 AND (r.enabled OR d.kind = 'test')
       AND d.created_at < now() - make_interval(secs => $1) AND d.created_at > now() - make_interval(secs => $2)
     ORDER BY d.created_at LIMIT $3`,
    [o.afterMs / 1000, o.withinMs / 1000, o.batch],
  );
  return res.rows;
}

/**
 * A fresh token for a delivery to be queued again (its first token was only ever in the job that was lost), and its
 * note cleared; only while the token is still `tokenHash` and nothing has been attempted, so that of two servers
 * queueing it one wins. Null when it was not renewed.
 */
export async function renewAlertToken(db: Db, id: string, tokenHash: string): Promise<string | null> {
  const token = newAlertToken();
  const res = await db.pool.query(
    `UPDATE alert_delivery SET token_hash = $3, last_error = NULL
     WHERE id = $1 AND token_hash = $2 AND attempts = 0 AND delivered_at IS NULL`,
    [id, tokenHash, hashAlertToken(token)],
  );
  return res.rowCount ? token : null;
}
