/**
 * MLflow experiments, which are the projects of a team. Experiment "0" is the team's "Default" project, which
 * MLflow clients log to when they name no experiment.
 */
import { randomBytes } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { FilterError } from './filter';

type Queryable = Pick<Pool | PoolClient, 'query'>;

export interface ExperimentRow {
  id: string;
  name: string;
  description: string;
  created_at: Date;
  /** When a run of it last changed (null: it has no runs). */
  updated: Date | null;
}

/** The MLflow id of the team's "Default" project. */
export const DEFAULT_EXPERIMENT_ID = '0';

const EXPERIMENT_COLS = `p.id, p.name, p.description, p.created_at, (SELECT max(r.updated_at) FROM run r WHERE r.project_id = p.id) AS updated`;

const newProjectId = () => `p${randomBytes(12).toString('hex')}`;

/** A project of the team by id ("0": its "Default" project); null when the team has none such. */
export async function findExperiment(c: Queryable, teamId: string, id: string): Promise<ExperimentRow | null> {
  const r =
    id === DEFAULT_EXPERIMENT_ID
      ? await c.query<ExperimentRow>(
          `SELECT ${EXPERIMENT_COLS} FROM project p WHERE p.team_id = $1 AND p.name = 'Default'`,
          [teamId],
        )
      : await c.query<ExperimentRow>(`SELECT ${EXPERIMENT_COLS} FROM project p WHERE p.id = $1 AND p.team_id = $2`, [
          id,
          teamId,
        ]);
  return r.rows[0] ?? null;
}

export async function findExperimentByName(c: Queryable, teamId: string, name: string): Promise<ExperimentRow | null> {
  const r = await c.query<ExperimentRow>(
    `SELECT ${EXPERIMENT_COLS} FROM project p WHERE p.team_id = $1 AND p.name = $2`,
    [teamId, name],
  );
  return r.rows[0] ?? null;
}

/** Makes the team's "Default" project unless it has one (a run logged without an experiment goes there). */
export async function ensureDefaultExperiment(c: Queryable, teamId: string): Promise<void> {
  await c.query(
    `INSERT INTO project (id, team_id, name, description) VALUES ($1, $2, 'Default', 'MLflow runs logged without an experiment')
     ON CONFLICT (team_id, name) DO NOTHING`,
    [newProjectId(), teamId],
  );
}

/** A new project of the team; null when the team already has one of that name. */
export async function createExperiment(
  c: Queryable,
  teamId: string,
  e: { name: string; description: string },
): Promise<string | null> {
  const id = newProjectId();
  const r = await c.query(
    `INSERT INTO project (id, team_id, name, description) VALUES ($1, $2, $3, $4) ON CONFLICT (team_id, name) DO NOTHING`,
    [id, teamId, e.name, e.description],
  );
  return r.rowCount ? id : null;
}

export type ExperimentNameOp = '=' | '!=' | 'LIKE' | 'ILIKE';
export type ExperimentOrderField = 'name' | 'experiment_id' | 'creation_time' | 'last_update_time';

export interface ExperimentSearch {
  /** Conditions on the name, all of which must hold. */
  names: readonly { op: ExperimentNameOp; value: string }[];
  /** Sort keys before the default (newest first). */
  orderBy: readonly { field: ExperimentOrderField; desc: boolean }[];
  limit: number;
  offset: number;
}

const ORDER_COLUMN: Record<ExperimentOrderField, string> = {
  name: 'p.name',
  experiment_id: 'p.id',
  creation_time: 'p.created_at',
  last_update_time: 'updated',
};

const NAME_OPERATORS: Record<ExperimentNameOp, string | undefined> = {
  '=': '=',
  '!=': '<>',
  LIKE: 'LIKE',
  ILIKE: 'ILIKE',
};

export async function searchExperiments(c: Queryable, teamId: string, s: ExperimentSearch): Promise<ExperimentRow[]> {
  const params: unknown[] = [teamId];
  const where = ['p.team_id = $1'];
  for (const n of s.names) {
    // the operator is spliced into SQL: only from this table, whatever the caller checked
    const op = NAME_OPERATORS[n.op];
    if (!op) throw new FilterError(`unsupported comparator '${n.op}' for name`);
    params.push(n.value);
    where.push(`p.name ${op} $${params.length}`);
  }
  const order = s.orderBy.map((o) => `${ORDER_COLUMN[o.field]} ${o.desc ? 'DESC' : 'ASC'}`);
  params.push(s.limit, s.offset);
  const r = await c.query<ExperimentRow>(
    `SELECT ${EXPERIMENT_COLS} FROM project p WHERE ${where.join(' AND ')}
     ORDER BY ${[...order, 'p.created_at DESC', 'p.id'].join(', ')} LIMIT $${params.length - 1} OFFSET $${params.length}`,
    params,
  );
  return r.rows;
}
