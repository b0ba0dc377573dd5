/**
 * Alert rules (docs/architecture.md, "Alerts"): a project's, each with the secret the server signs its deliveries
 * with. Changes run in a transaction with their audit entry (`within`). Firings and deliveries: alert-deliveries.ts.
 */
import { randomBytes } from 'node:crypto';
import type { PoolClient } from 'pg';
import type { Db } from './client';
import { withTransaction } from './touch';

/** A rule as lists show it: never its secret. */
export interface AlertRuleRow {
  id: string;
  projectId: string;
  name: string;
  kind: string;
  metricKey: string | null;
  op: string | null;
  threshold: number | null;
  url: string;
  enabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** The columns of AlertRuleRow, of the table or of its alias `a.` (never the secret). */
const ruleColumns = (a = '') =>
  `${a}id, ${a}project_id AS "projectId", ${a}name, ${a}kind, ${a}metric_key AS "metricKey", ${a}op, ${a}threshold,
   ${a}url, ${a}enabled, ${a}created_at AS "createdAt", ${a}updated_at AS "updatedAt"`;
const RULE_COLUMNS = ruleColumns();

export interface NewAlertRule {
  name: string;
  kind: string;
  metricKey: string | null;
  op: string | null;
  threshold: number | null;
  url: string;
  enabled: boolean;
  createdBy: string | null;
}

type Within<T> = (c: PoolClient, rule: T) => Promise<void>;

/** A rule's HMAC key, made by the server: `aftwh_` and 256 random bits. */
export function generateAlertSecret(): string {
  return `aftwh_${randomBytes(32).toString('base64url')}`;
}

/** Whether `projectId` is a project of the team (another team's is as missing as one that never was). */
async function projectOfTeam(c: Pick<PoolClient, 'query'>, teamId: string, projectId: string, lock = false) {
  const res = await c.query(`SELECT id FROM project WHERE id = $1 AND team_id = $2${lock ? ' FOR UPDATE' : ''}`, [
    projectId,
    teamId,
  ]);
  return (res.rowCount ?? 0) > 0;
}

/** The project's rules, oldest first; null when the project is not the team's. */
export async function listAlertRules(db: Db, teamId: string, projectId: string): Promise<AlertRuleRow[] | null> {
  if (!(await projectOfTeam(db.pool, teamId, projectId))) return null;
  const res = await db.pool.query<AlertRuleRow>(
    `SELECT ${RULE_COLUMNS} FROM alert_rule WHERE project_id = $1 ORDER BY created_at, id`,
    [projectId],
  );
  return res.rows;
}

/** One rule of the team with its project's name, or null. */
export async function findAlertRule(db: Db, teamId: string, ruleId: string) {
  const res = await db.pool.query<AlertRuleRow & { projectName: string }>(
    `SELECT ${ruleColumns('r.')}, p.name AS "projectName"
     FROM alert_rule r JOIN project p ON p.id = r.project_id WHERE r.id = $1 AND p.team_id = $2`,
    [ruleId, teamId],
  );
  return res.rows[0] ?? null;
}

export class AlertRuleCapError extends Error {
  constructor(readonly max: number) {
    super(`a project has at most ${max} alert rules: delete one first`);
  }
}

/**
 * Stores a rule of the team's project with a fresh secret, and runs `within` in the same transaction (the audit
 * entry). Returns the rule and its secret (shown once); null when the project is not the team's.
 */
export async function createAlertRule(
  db: Db,
  teamId: string,
  projectId: string,
  rule: NewAlertRule,
  opts: { maxRules: number; within?: Within<AlertRuleRow> },
): Promise<{ rule: AlertRuleRow; secret: string } | null> {
  return withTransaction(db.pool, async (c) => {
    // the project row is locked so that concurrent creations cannot together pass the cap
    if (!(await projectOfTeam(c, teamId, projectId, true))) return null;
    const n = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM alert_rule WHERE project_id = $1`, [
      projectId,
    ]);
    if (n.rows[0]!.n >= opts.maxRules) throw new AlertRuleCapError(opts.maxRules);
    const secret = generateAlertSecret();
    const res = await c.query<AlertRuleRow>(
      `INSERT INTO alert_rule (id, project_id, name, kind, metric_key, op, threshold, url, secret, enabled, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ${RULE_COLUMNS}`,
      [
        `al${randomBytes(11).toString('hex')}`,
        projectId,
        rule.name,
        rule.kind,
        rule.metricKey,
        rule.op,
        rule.threshold,
        rule.url,
        secret,
        rule.enabled,
        rule.createdBy,
      ],
    );
    await opts.within?.(c, res.rows[0]!);
    return { rule: res.rows[0]!, secret };
  });
}

export interface AlertRulePatch {
  name?: string | undefined;
  url?: string | undefined;
  enabled?: boolean | undefined;
  metricKey?: string | undefined;
  op?: string | undefined;
  threshold?: number | undefined;
}

/** Changes a rule of the team (its kind and secret stay); null when it is not the team's. */
export async function updateAlertRule(
  db: Db,
  teamId: string,
  ruleId: string,
  patch: AlertRulePatch,
  within?: Within<AlertRuleRow>,
): Promise<AlertRuleRow | null> {
  return withTransaction(db.pool, async (c) => {
    const res = await c.query<AlertRuleRow>(
      `UPDATE alert_rule SET name = COALESCE($3, name), url = COALESCE($4, url), enabled = COALESCE($5, enabled),
         metric_key = COALESCE($6, metric_key), op = COALESCE($7, op), threshold = COALESCE($8, threshold),
         updated_at = now()
       WHERE id = $1 AND project_id IN (SELECT id FROM project WHERE team_id = $2) RETURNING ${RULE_COLUMNS}`,
      [
        ruleId,
        teamId,
        patch.name ?? null,
        patch.url ?? null,
        patch.enabled ?? null,
        patch.metricKey ?? null,
        patch.op ?? null,
        patch.threshold ?? null,
      ],
    );
    const row = res.rows[0];
    if (row) await within?.(c, row);
    return row ?? null;
  });
}

/** Deletes a rule of the team with its delivery log; its name, or null when it is not the team's. */
export async function deleteAlertRule(
  db: Db,
  teamId: string,
  ruleId: string,
  within?: Within<{ name: string; projectId: string }>,
): Promise<{ name: string; projectId: string } | null> {
  return withTransaction(db.pool, async (c) => {
    const res = await c.query<{ name: string; projectId: string }>(
      `DELETE FROM alert_rule WHERE id = $1 AND project_id IN (SELECT id FROM project WHERE team_id = $2)
       RETURNING name, project_id AS "projectId"`,
      [ruleId, teamId],
    );
    const row = res.rows[0];
    if (row) await within?.(c, row);
    return row ?? null;
  });
}
