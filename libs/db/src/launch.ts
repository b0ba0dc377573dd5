/**
 * Runs the platform trains: created queued (with their sweep, in one transaction), started by a worker only while
 * still queued or running (a retried job resumes; a canceled run stays canceled), canceled in bulk; and what a
 * launch checks of the runs it starts from.
 */
import type { Pool } from 'pg';
import type { Db } from './client';
import { NOTIFY_RUN, TOUCH_SET, withTransaction } from './touch';
import { createRunTokens } from './run-tokens';
import { REVOKE_ENDED } from './run-writes';

/** Queued plus running runs a team may have at once, unless the server sets another cap. */
export const DEFAULT_MAX_ACTIVE_RUNS = 2_000;

/** A launch that would take a team past its cap of queued plus running runs. */
export class ActiveRunCapError extends Error {
  constructor(
    readonly active: number,
    readonly adding: number,
    readonly cap: number,
  ) {
    super(
      `this team has ${active} queued or running runs; launching ${adding} more would pass its limit of ${cap} ` +
        `(wait for runs to finish, or cancel some)`,
    );
  }
}

export interface NewRun {
  /** Caller's handle for wiring parents: alignment runs name their parent's `ref`. */
  ref: string;
  parentRef?: string;
  parentRunId?: string;
  name: string;
  method: string;
  constraint: string;
  config: Record<string, unknown>;
  configHash: string;
  seed: number | null;
  tags: string[];
}

/**
 * Creates a project (if new), optionally a sweep, and its runs, all queued, in one transaction, each with its run
 * token (libs/db/src/run-tokens.ts). Returns ids and tokens by `ref`. Refuses (ActiveRunCapError, nothing written)
 * when the team would have more than `maxActive` queued plus running runs; launches of one team are serialized so
 * two at once cannot both pass the check.
 */
export async function createQueuedRuns(
  pool: Pool,
  teamId: string,
  project: string,
  runs: readonly NewRun[],
  sweep?: { name: string; spec: unknown },
  maxActive = DEFAULT_MAX_ACTIVE_RUNS,
): Promise<{ projectId: string; sweepId: string | null; ids: Map<string, string>; tokens: Map<string, string> }> {
  return withTransaction(pool, async (c) => {
    await c.query(`SELECT pg_advisory_xact_lock(hashtextextended('launch:' || $1, 0))`, [teamId]);
    const act = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM run r JOIN project p ON p.id = r.project_id
       WHERE p.team_id = $1 AND r.status IN ('queued', 'running')`,
      [teamId],
    );
    const active = act.rows[0]!.n;
    if (active + runs.length > maxActive) throw new ActiveRunCapError(active, runs.length, maxActive);
    const p = await c.query<{ id: string }>(
      `INSERT INTO project (id, team_id, name) VALUES ('p' || replace(gen_random_uuid()::text, '-', ''), $1, $2)
       ON CONFLICT (team_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id`,
      [teamId, project],
    );
    const projectId = p.rows[0]!.id;
    let sweepId: string | null = null;
    if (sweep) {
      const s = await c.query<{ id: string }>(
        `INSERT INTO sweep (id, project_id, name, spec) VALUES ('s' || replace(gen_random_uuid()::text, '-', ''), $1, $2, $3::jsonb) RETURNING id`,
        [projectId, sweep.name, JSON.stringify(sweep.spec)],
      );
      sweepId = s.rows[0]!.id;
    }
    const ids = new Map<string, string>();
    for (const r of runs) {
      const parent = r.parentRunId ?? (r.parentRef ? ids.get(r.parentRef) : undefined) ?? null;
      const res = await c.query<{ id: string }>(
        `INSERT INTO run (id, project_id, sweep_id, parent_run_id, name, method, "constraint", config, config_hash, seed, tags, status)
         VALUES ('r' || replace(gen_random_uuid()::text, '-', ''), $1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, 'queued') RETURNING id`,
        [
          projectId,
          sweepId,
          parent,
          r.name,
          r.method,
          r.constraint,
          JSON.stringify(r.config),
          r.configHash,
          r.seed,
          r.tags,
        ],
      );
      ids.set(r.ref, res.rows[0]!.id);
    }
    const byRun = await createRunTokens(c, [...ids.values()]);
    const tokens = new Map([...ids].map(([ref, runId]) => [ref, byRun.get(runId)!]));
    return { projectId, sweepId, ids, tokens };
  });
}

/** Undoes `createQueuedRuns` when the jobs could not be enqueued (nothing half-written stays behind). */
export async function deleteQueuedRuns(pool: Pool, runIds: readonly string[], sweepId: string | null): Promise<void> {
  await withTransaction(pool, async (c) => {
    await c.query(`DELETE FROM run WHERE id = ANY($1::text[]) AND status = 'queued'`, [runIds]);
    if (sweepId)
      await c.query(`DELETE FROM sweep WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM run WHERE sweep_id = $1)`, [
        sweepId,
      ]);
  });
}

/**
 * The config without the previous start's placement keys (`backend`, `backend.*`, `worker.*`): a resume on another
 * worker must not keep the last one's adapter or kernels, and repeated starts must not grow the config.
 */
const WITHOUT_PLACEMENT = `(SELECT coalesce(jsonb_object_agg(k, v), '{}'::jsonb) FROM jsonb_each(config) AS e(k, v)
   WHERE k <> 'backend' AND k NOT LIKE 'backend.%' AND k NOT LIKE 'worker.%')`;

/**
 * A worker starts (or, after a crash, resumes) a run: only a queued or running run becomes running.
 * Returns the status it found, so a job for a canceled or finished run is skipped. `params`, where the worker trains
 * it (backend, adapter, host: keys the launch never writes, checked by the API), replace the previous start's.
 */
export async function startRun(
  pool: Pool,
  runId: string,
  teamId: string,
  backend: string | null,
  params: Readonly<Record<string, string>> = {},
): Promise<{ started: boolean; status: string } | null> {
  const res = await pool.query<{ status: string; started: boolean }>(
    `WITH cur AS (
       SELECT r.id, r.status::text AS status FROM run r JOIN project p ON p.id = r.project_id
       WHERE r.id = $1 AND p.team_id = $2 FOR UPDATE OF r),
     u AS (
       UPDATE run SET status = 'running', started_at = COALESCE(started_at, now()), heartbeat_at = now(),
              backend = COALESCE($3, backend), config = ${WITHOUT_PLACEMENT} || $4::jsonb, error = NULL, ${TOUCH_SET}
       WHERE id IN (SELECT id FROM cur WHERE status IN ('queued', 'running')) RETURNING id, ${NOTIFY_RUN('id')})
     SELECT cur.status, EXISTS (SELECT 1 FROM u) AS started FROM cur`,
    [runId, teamId, backend, JSON.stringify(params)],
  );
  const row = res.rows[0];
  return row ? { started: row.started, status: row.started ? 'running' : row.status } : null;
}

/** Marks unfinished runs canceled; returns the ids that were (those already finished are left alone). */
export async function cancelRuns(
  pool: Pool,
  teamId: string,
  where: { runIds?: readonly string[]; sweepId?: string },
  reason: string,
): Promise<string[]> {
  const res = await pool.query<{ id: string }>(
    `WITH u AS (
       UPDATE run SET status = 'canceled', error = $4, finished_at = now(), ${TOUCH_SET}
       WHERE project_id IN (SELECT id FROM project WHERE team_id = $1)
         AND status IN ('queued', 'running')
         AND (($2::text[] IS NOT NULL AND id = ANY($2::text[])) OR ($3::text IS NOT NULL AND sweep_id = $3))
       RETURNING id, status),
     ${REVOKE_ENDED}
     SELECT id, ${NOTIFY_RUN('id')} FROM u`,
    [teamId, where.runIds ?? null, where.sweepId ?? null, reason],
  );
  return res.rows.map((r) => r.id);
}

/**
 * What a launch checks of an alignment run's VFT parent (a run of the team): its method, its status and the config
 * it was launched with. Null when not the team's.
 */
export function findLaunchParent(db: Db, teamId: string, runId: string) {
  return db.prisma.run.findFirst({
    where: { id: runId, project: { teamId } },
    select: { id: true, method: true, status: true, config: true },
  });
}

/**
 * What a fork checks of the run it forks (a run of the team): its parent, and whether it has a last good
 * checkpoint (the `last-good` artifact the trainer keeps before a degradation) to start from. Null when not the
 * team's.
 */
export async function findForkSource(
  db: Db,
  teamId: string,
  runId: string,
): Promise<{ id: string; parentRunId: string | null; hasLastGood: boolean } | null> {
  const src = await db.prisma.run.findFirst({
    where: { id: runId, project: { teamId } },
    select: {
      id: true,
      parentRunId: true,
      artifacts: { where: { name: 'last-good' }, select: { step: true }, take: 1 },
    },
  });
  return src && { id: src.id, parentRunId: src.parentRunId, hasLastGood: src.artifacts.length > 0 };
}
