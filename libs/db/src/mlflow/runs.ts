/**
 * Runs as the MLflow API reads and writes them. Every write follows the rule of touch.ts: the run is touched
 * (locked, its write_seq bumped, announced) in the transaction that writes it.
 */
import { randomBytes } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { requestRunFold } from '../metric-folder';
import { revokeRunTokens } from '../run-tokens';
import { TERMINAL_STATUSES } from '../run-writes';
import { RunNotFoundError, writeToRun } from '../touch';
import { compileOrderBy, compileRunFilter } from './filter';

type Queryable = Pick<Pool | PoolClient, 'query'>;

export interface MlflowRunRow {
  id: string;
  num: string;
  project_id: string;
  name: string;
  status: string;
  config: Record<string, unknown>;
  kv_tags: Record<string, string>;
  method: string;
  constraint: string;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

const RUN_COLS = `r.id, r.num::text AS num, r.project_id, r.name, r.status::text AS status, r.config, r.kv_tags, r.method, r."constraint", r.created_at, r.started_at, r.finished_at`;

/** A run of the team by id; null when the team has none such. */
export async function findMlflowRun(c: Queryable, teamId: string, runId: string): Promise<MlflowRunRow | null> {
  const r = await c.query<MlflowRunRow>(
    `SELECT ${RUN_COLS} FROM run r JOIN project p ON p.id = r.project_id WHERE r.id = $1 AND p.team_id = $2`,
    [runId, teamId],
  );
  return r.rows[0] ?? null;
}

/**
 * One transaction that writes to a run of the team: touched first (writeToRun), then `fn` with the run as it is
 * under that lock. Throws RunNotFoundError when the run is not the team's; a throw from `fn` writes nothing.
 */
export function writeToMlflowRun<T>(
  pool: Pool,
  runId: string,
  teamId: string,
  fn: (c: PoolClient, run: MlflowRunRow) => Promise<T>,
): Promise<T> {
  return writeToRun(pool, runId, teamId, async (c) => {
    const run = await findMlflowRun(c, teamId, runId);
    if (!run) throw new RunNotFoundError(runId);
    return fn(c, run);
  });
}

export interface NewMlflowRun {
  projectId: string;
  name: string;
  method: string;
  constraint: string;
  startedAt: Date;
  kvTags: Record<string, string>;
  configHash: string;
}

/** A new running run; returns its id (32 hex digits, as MLflow's run ids are). */
export async function createMlflowRun(c: Queryable, run: NewMlflowRun): Promise<string> {
  const id = randomBytes(16).toString('hex');
  await c.query(
    `INSERT INTO run (id, project_id, name, method, "constraint", status, started_at, kv_tags, config_hash)
     VALUES ($1, $2, $3, $4, $5, 'running', $6, $7::jsonb, $8)`,
    [
      id,
      run.projectId,
      run.name,
      run.method,
      run.constraint,
      run.startedAt,
      JSON.stringify(run.kvTags),
      run.configHash,
    ],
  );
  return id;
}

/**
 * MLflow's UpdateRun: a status (an ended one sets `finished_at` and revokes the run's tokens, another clears it),
 * a name (kept in the `mlflow.runName` tag too) and an end time, each left as it is when null.
 */
export async function updateMlflowRun(
  pool: Pool,
  runId: string,
  teamId: string,
  patch: { status: string | null; name: string | null; endTime: Date | null },
): Promise<void> {
  const ended = (TERMINAL_STATUSES as readonly string[]).includes(patch.status ?? '');
  await writeToRun(pool, runId, teamId, async (c) => {
    await c.query(
      `UPDATE run SET status = COALESCE($2::"RunStatus", status), name = COALESCE($3, name),
              finished_at = CASE WHEN $4 THEN COALESCE($5, finished_at, now()) WHEN $2 IS NOT NULL THEN NULL ELSE COALESCE($5, finished_at) END
       WHERE id = $1`,
      [runId, patch.status, patch.name, ended, patch.endTime],
    );
    if (ended) await revokeRunTokens(c, runId);
    if (patch.name)
      await c.query(
        `UPDATE run SET kv_tags = kv_tags || jsonb_build_object('mlflow.runName', $2::text) WHERE id = $1`,
        [runId, patch.name],
      );
  });
  if (ended) requestRunFold(pool, runId);
}

/** Run columns some tags also set (the name, AFT's method and constraint); an absent one is left as it is. */
export interface ColumnsFromTags {
  name?: string;
  method?: string;
  constraint?: string;
}

/** Merges key-value tags into a run touched in this transaction (writeToMlflowRun). */
export async function setRunKvTags(
  c: PoolClient,
  runId: string,
  tags: Record<string, string>,
  cols: ColumnsFromTags,
): Promise<void> {
  await c.query(
    `UPDATE run SET kv_tags = kv_tags || $2::jsonb, name = COALESCE($3, name), method = COALESCE($4, method), "constraint" = COALESCE($5, "constraint") WHERE id = $1`,
    [runId, JSON.stringify(tags), cols.name ?? null, cols.method ?? null, cols.constraint ?? null],
  );
}

/** Removes one key-value tag of a run touched in this transaction (writeToMlflowRun). */
export async function deleteRunKvTag(c: PoolClient, runId: string, key: string): Promise<void> {
  await c.query('UPDATE run SET kv_tags = kv_tags - $2 WHERE id = $1', [runId, key]);
}

/** Replaces the config (and its hash) of a run touched in this transaction (writeToMlflowRun). */
/**
 * Replaces the run's config; false (nothing written) while the platform trains the run — it holds a run token
 * then, and its worker reads the config from this row (docs/architecture.md, "The job contract"), so a param
 * logged meanwhile would change what a retry trains.
 */
export async function setRunConfig(
  c: PoolClient,
  runId: string,
  config: Record<string, unknown>,
  configHash: string,
): Promise<boolean> {
  const res = await c.query(
    `UPDATE run SET config = $2::jsonb, config_hash = $3
     WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM run_token WHERE run_id = $1)`,
    [runId, JSON.stringify(config), configHash],
  );
  return (res.rowCount ?? 0) > 0;
}

/** A compiled MLflow run filter and order_by; $1 of its parameters is left for the experiments' project ids. */
export interface RunSearch {
  where: string[];
  order: string[];
  params: unknown[];
}

/** Compiles MLflow's filter and order_by strings (filter.ts); throws FilterError when one is malformed. */
export function prepareRunSearch(filter: string, orderBy: readonly string[]): RunSearch {
  const params: unknown[] = [null];
  const where = compileRunFilter(filter, params).where;
  const order = compileOrderBy(orderBy, params);
  return { where, order, params };
}

/** The runs of the projects that match a prepared search, newest first after its own order. */
export async function searchMlflowRuns(
  c: Queryable,
  projectIds: readonly string[],
  search: RunSearch,
  page: { limit: number; offset: number },
): Promise<MlflowRunRow[]> {
  const params = [projectIds, ...search.params.slice(1), page.limit, page.offset];
  const r = await c.query<MlflowRunRow>(
    `SELECT ${RUN_COLS} FROM run r WHERE r.project_id = ANY($1::text[]) ${search.where.map((w) => `AND ${w}`).join(' ')}
     ORDER BY ${[...search.order, 'COALESCE(r.started_at, r.created_at) DESC', 'r.id'].join(', ')}
     LIMIT $${params.length - 1} OFFSET $${params.length}`,
    params,
  );
  return r.rows;
}
