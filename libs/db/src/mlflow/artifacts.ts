/**
 * The artifact rows of files uploaded through the MLflow API (the files themselves are on the server's disk; the
 * quota and path-clash checks are in ../artifacts.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { touchRun } from '../touch';

type Queryable = Pick<Pool | PoolClient, 'query'>;

/** The run's artifacts whose URI starts with `root`, by URI; `bytes` as text (a bigint). */
export async function listStoredArtifacts(
  c: Queryable,
  runId: string,
  root: string,
): Promise<{ uri: string; bytes: string | null }[]> {
  const r = await c.query<{ uri: string; bytes: string | null }>(
    `SELECT uri, bytes::text AS bytes FROM artifact WHERE run_id = $1 AND uri LIKE $2 ORDER BY uri`,
    [runId, `${root.replace(/[%_\\]/g, '\\$&')}%`],
  );
  return r.rows;
}

/** One uploaded file's row: what was recorded of its bytes, and where they are (`metadata.blob`). */
export async function storedArtifact(
  c: Queryable,
  runId: string,
  uri: string,
): Promise<{ sha256: string | null; bytes: number | null; metadata: Record<string, unknown> } | null> {
  const r = await c.query<{ sha256: string | null; bytes: number | null; metadata: Record<string, unknown> | null }>(
    `SELECT sha256, bytes::float8 AS bytes, metadata FROM artifact WHERE run_id = $1 AND uri = $2`,
    [runId, uri],
  );
  const row = r.rows[0];
  return row ? { ...row, metadata: row.metadata ?? {} } : null;
}

export interface StoredArtifact {
  name: string;
  uri: string;
  sha256: string;
  bytes: number;
  metadata: Record<string, unknown>;
}

/**
 * Records an uploaded file as an artifact of the run (replacing the row of an earlier upload to the same URI), in
 * the caller's transaction: the run is touched first (touch.ts). RunNotFoundError when it is not the team's.
 */
export async function saveStoredArtifact(
  c: PoolClient,
  runId: string,
  teamId: string,
  a: StoredArtifact,
): Promise<void> {
  await touchRun(c, runId, teamId);
  await c.query(
    `INSERT INTO artifact (id, run_id, kind, name, uri, sha256, bytes, metadata) VALUES ($1, $2, 'other', $3, $4, $5, $6, $7)
     ON CONFLICT (run_id, uri) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes, metadata = excluded.metadata`,
    [`a${randomBytes(12).toString('hex')}`, runId, a.name, a.uri, a.sha256, a.bytes, JSON.stringify(a.metadata)],
  );
}
