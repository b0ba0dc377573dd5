import type { Pool, PoolClient } from 'pg';
import type { Db } from './client';
import { requestRunFold } from './metric-folder';
import { NOTIFY_RUN, RunNotFoundError, TOUCH_SET, withTransaction, writeToRun } from './touch';

const TEAM_SCOPE = `project_id IN (SELECT id FROM project WHERE team_id = $2)`;

/**
 * A CTE that deletes the run tokens of the rows `u` (id, status) left ended: a run's token is revoked in the same
 * statement that ends the run (libs/db/src/run-tokens.ts). Postgres runs every data-modifying CTE of a statement.
 */
export const REVOKE_ENDED = `revoked AS (
       DELETE FROM run_token WHERE run_id IN (SELECT id FROM u WHERE status IN ('succeeded', 'failed', 'canceled')))`;

/**
 * Runs one UPDATE on a run of the team, bumps its write sequence and announces it, in one statement.
 * `set` is SQL over parameters $3…; throws RunNotFoundError when the run is not the team's.
 */
async function updateRun(pool: Pool, runId: string, teamId: string, set: string, params: unknown[]) {
  const res = await pool.query<{ id: string; write_seq: number }>(
    `WITH u AS (
       UPDATE run SET ${set}, ${TOUCH_SET}
       WHERE id = $1 AND ${TEAM_SCOPE} RETURNING id, write_seq, status),
     ${REVOKE_ENDED}
     SELECT u.id, u.write_seq, ${NOTIFY_RUN('u.id')} FROM u`,
    [runId, teamId, ...params],
  );
  if (!res.rows[0]) throw new RunNotFoundError(runId);
  return res.rows[0].write_seq;
}

/** A run a client creates and logs to itself (the platform's own launches are `createQueuedRuns`, launch.ts). */
export interface ClientRun {
  /** The team's project, by name; created if new. */
  project: string;
  name: string;
  method: string;
  constraint: string;
  config: Record<string, unknown>;
  configHash: string;
  tags: string[];
  notes: string;
  seed: number | null;
  datasetHash: string | null;
  backend: string | null;
  parentRunId: string | null;
  sweepId: string | null;
  status: 'queued' | 'running';
}

/**
 * The team's project of that name, created if new. Not Prisma's `upsert`: on a compound unique key it reads, then
 * inserts, so two first runs of a new project at once lose the race with a unique violation (a 500 to the client).
 */
async function projectNamed(db: Db, teamId: string, name: string): Promise<{ id: string }> {
  const where = { teamId_name: { teamId, name } };
  const found = await db.prisma.project.findUnique({ where, select: { id: true } });
  if (found) return found;
  try {
    return await db.prisma.project.create({ data: { teamId, name }, select: { id: true } });
  } catch (e) {
    // P2002: the other request created it between our read and insert
    if ((e as { code?: unknown }).code !== 'P2002') throw e;
    return db.prisma.project.findUniqueOrThrow({ where, select: { id: true } });
  }
}

/**
 * Creates a run of the team (and its project if new); returns the run's id. A new run has no one watching it yet,
 * so it is not announced: its first write is. The caller checks that `parentRunId` and `sweepId` are the team's.
 */
export async function createClientRun(db: Db, teamId: string, r: ClientRun): Promise<string> {
  const project = await projectNamed(db, teamId, r.project);
  const now = new Date();
  const { project: _project, config, ...cols } = r;
  const created = await db.prisma.run.create({
    data: {
      ...cols,
      projectId: project.id,
      config: config as object,
      startedAt: r.status === 'running' ? now : null,
      heartbeatAt: now,
    },
    select: { id: true },
  });
  return created.id;
}

export const TERMINAL_STATUSES = ['succeeded', 'failed', 'canceled'] as const;

export async function setRunStatus(pool: Pool, runId: string, teamId: string, status: string, error?: string | null) {
  const seq = await updateRun(
    pool,
    runId,
    teamId,
    `status = $3::"RunStatus",
     error = COALESCE($4, CASE WHEN $3 IN ('queued', 'running', 'succeeded') THEN NULL ELSE error END),
     started_at = CASE WHEN $3 = 'running' THEN COALESCE(started_at, now()) ELSE started_at END,
     finished_at = CASE WHEN $3 IN ('succeeded', 'failed', 'canceled') THEN now() ELSE NULL END,
     heartbeat_at = now()`,
    [status, error ?? null],
  );
  // the run has ended: the rest of its points go into chunks now (docs/architecture.md, "The metric store"). Best
  // effort: the status is written; a fold that fails leaves the points in the tail, where reads find them too
  if ((TERMINAL_STATUSES as readonly string[]).includes(status)) requestRunFold(pool, runId);
  return seq;
}

/** Merges keys into the run's summary (a key set to null is removed). */
export function mergeRunSummary(pool: Pool, runId: string, teamId: string, patch: Record<string, unknown>) {
  return updateRun(pool, runId, teamId, `summary = jsonb_strip_nulls(summary || $3::jsonb), heartbeat_at = now()`, [
    JSON.stringify(patch),
  ]);
}

export function updateRunMeta(
  pool: Pool,
  runId: string,
  teamId: string,
  patch: { tags?: string[] | undefined; notes?: string | undefined; name?: string | undefined },
) {
  return updateRun(
    pool,
    runId,
    teamId,
    `tags = COALESCE($3::text[], tags), notes = COALESCE($4, notes), name = COALESCE($5, name)`,
    [patch.tags ?? null, patch.notes ?? null, patch.name ?? null],
  );
}

export function heartbeatRun(pool: Pool, runId: string, teamId: string) {
  return updateRun(pool, runId, teamId, `heartbeat_at = now()`, []);
}

/** A sample as `insertSamples` stores it (the SDK's `SampleRow` is what a client logs; the API maps one to the other). */
export interface StoredSample {
  step: number;
  split: string;
  questionId: string;
  sampleIdx: number;
  prompt: string;
  completion: string;
  extractedAnswer?: string | null | undefined;
  gold?: string | null | undefined;
  correct?: boolean | null | undefined;
  score?: number | null | undefined;
  rank?: number | null | undefined;
}

/** Stores samples idempotently: (run, step, split, question, sample index) identifies one. */
export async function insertSamples(pool: Pool, runId: string, teamId: string, rows: readonly StoredSample[]) {
  return writeToRun(pool, runId, teamId, (c) => insertSampleRows(c, runId, rows));
}

/**
 * `insertSamples` in the caller's transaction, for a write that also stores something else (an uploaded table and
 * the samples it holds); the caller has touched the run (touch.ts) and checked that it is the team's.
 */
export async function insertSampleRows(c: Pick<PoolClient, 'query'>, runId: string, rows: readonly StoredSample[]) {
  const col = <K extends keyof StoredSample>(k: K) => rows.map((r) => r[k] ?? null);
  const res = await c.query(
    `INSERT INTO sample (run_id, step, split, question_id, sample_idx, prompt, completion, extracted_answer, gold,
                         correct, score, rank)
     SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[],
                              $9::text[], $10::bool[], $11::float8[], $12::int[])
     ON CONFLICT DO NOTHING`,
    [
      runId,
      col('step'),
      col('split'),
      col('questionId'),
      col('sampleIdx'),
      col('prompt'),
      col('completion'),
      col('extractedAnswer'),
      col('gold'),
      col('correct'),
      col('score'),
      col('rank'),
    ],
  );
  return { inserted: res.rowCount ?? 0, skipped: rows.length - (res.rowCount ?? 0) };
}

export interface ArtifactRow {
  kind: string;
  name: string;
  uri: string;
  sha256?: string | undefined;
  bytes?: number | undefined;
  step?: number | undefined;
  metadata?: Record<string, unknown> | undefined;
}

/** Registers an artifact; registering the same (run, uri) again updates it instead of duplicating it. */
export async function registerArtifact(pool: Pool, runId: string, teamId: string, a: ArtifactRow) {
  return writeToRun(pool, runId, teamId, async (c) => {
    const res = await c.query<{ id: string }>(
      `INSERT INTO artifact (id, run_id, kind, name, uri, sha256, bytes, step, metadata)
       VALUES (gen_random_uuid()::text, $1, $2::"ArtifactKind", $3, $4,
               $5, $6, $7, $8::jsonb)
       ON CONFLICT (run_id, uri) DO UPDATE SET kind = excluded.kind, name = excluded.name, sha256 = excluded.sha256,
         bytes = excluded.bytes, step = excluded.step, metadata = excluded.metadata
       RETURNING id`,
      [
        runId,
        a.kind,
        a.name,
        a.uri,
        a.sha256 ?? null,
        a.bytes ?? null,
        a.step ?? null,
        JSON.stringify(a.metadata ?? {}),
      ],
    );
    return res.rows[0]!.id;
  });
}

export async function insertEvent(
  pool: Pool,
  runId: string,
  teamId: string,
  e: { kind: string; step?: number | undefined; details?: Record<string, unknown> | undefined },
) {
  return writeToRun(pool, runId, teamId, async (c) => {
    const res = await c.query<{ id: string }>(
      `INSERT INTO event (run_id, kind, step, details) VALUES ($1, $2, $3, $4::jsonb) RETURNING id::text`,
      [runId, e.kind, e.step ?? null, JSON.stringify(e.details ?? {})],
    );
    return res.rows[0]!.id;
  });
}

/**
 * Deletes a run of the team with everything it logged. metric_point and metric_rollup carry no foreign key
 * (a per-row RI check would slow the bulk insert), so they are removed here, in the same transaction.
 * (Prisma's Wasm migration engine splits SQL on every semicolon, which rules out a plpgsql trigger.)
 */
export async function deleteRun(
  pool: Pool,
  runId: string,
  teamId: string,
  /** Runs in the same transaction after the delete (an audit record of it). */
  within?: (c: PoolClient, run: { name: string }) => Promise<void>,
): Promise<void> {
  await withTransaction(pool, async (c) => {
    // a long run's points take longer to delete than a request's statement_timeout allows; a delete cut short
    // would roll back and leave the run undeletable
    await c.query('SET LOCAL statement_timeout = 0');
    const res = await c.query<{ num: string; name: string }>(
      `DELETE FROM run WHERE id = $1 AND ${TEAM_SCOPE} RETURNING num::text AS num, name`,
      [runId, teamId],
    );
    const row = res.rows[0];
    if (row === undefined) throw new RunNotFoundError(runId);
    await c.query('DELETE FROM metric_point WHERE run_num = $1', [row.num]);
    await c.query('DELETE FROM metric_rollup WHERE run_num = $1', [row.num]);
    await c.query('DELETE FROM metric_chunk WHERE run_num = $1', [row.num]);
    await within?.(c, { name: row.name });
  });
}
