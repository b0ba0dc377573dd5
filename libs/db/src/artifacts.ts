/**
 * Artifact files this server keeps itself (uploaded through the MLflow API, URIs `mlflow-artifacts:/…`): a team's
 * storage use, the lock that makes its quota exact under concurrent uploads, and file/folder clashes of paths.
 * The use is summed from the artifact rows, which go with their run, so deleting a run gives its bytes back.
 */
import type { Pool, PoolClient } from 'pg';

type Q = Pick<Pool | PoolClient, 'query'>;

export const STORED_ARTIFACT_PREFIX = 'mlflow-artifacts:';

const likePrefix = (s: string) => `${s.replace(/[%_\\]/g, '\\$&')}%`;

/**
 * Bytes of the stored artifacts of `teamId`'s runs, not counting the artifact at (`except.runId`, `except.uri`) —
 * the one an upload is about to replace.
 */
export async function teamArtifactBytes(
  c: Q,
  teamId: string,
  except?: { runId: string; uri: string },
): Promise<number> {
  const r = await c.query<{ bytes: string }>(
    `SELECT COALESCE(sum(a.bytes), 0)::text AS bytes
     FROM artifact a JOIN run r ON r.id = a.run_id JOIN project p ON p.id = r.project_id
     WHERE p.team_id = $1 AND a.uri LIKE $2 AND NOT (a.run_id = $3 AND a.uri = $4)`,
    [teamId, likePrefix(STORED_ARTIFACT_PREFIX), except?.runId ?? '', except?.uri ?? ''],
  );
  return Number(r.rows[0]!.bytes);
}

/**
 * Serializes a team's uploads until the transaction ends, so two cannot both fit in the last of its quota. With
 * `timeoutMs`, this transaction waits at most that long for any lock (`SET LOCAL lock_timeout`): past it Postgres
 * refuses the statement (isLockTimeout) instead of holding a connection while it queues.
 */
export async function lockTeamStorage(c: PoolClient, teamId: string, o: { timeoutMs?: number } = {}): Promise<void> {
  if (o.timeoutMs) await c.query(`SELECT set_config('lock_timeout', $1, true)`, [`${Math.ceil(o.timeoutMs)}ms`]);
  await c.query(`SELECT pg_advisory_xact_lock(hashtextextended('aft.artifact-quota:' || $1, 0))`, [teamId]);
}

/** Whether `e` is Postgres giving up on a lock after `lock_timeout` (SQLSTATE 55P03). */
export function isLockTimeout(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === '55P03';
}

/**
 * Whether a file at `<root>/<rel>` would clash with the run's stored artifacts: a file already at one of its parent
 * folders (`a.txt` when uploading `a.txt/b.txt`), or artifacts under it (it is a folder). Null when it fits.
 */
export async function artifactPathClash(
  c: Q,
  runId: string,
  root: string,
  rel: string,
): Promise<{ kind: 'file-above'; path: string } | { kind: 'folder' } | null> {
  const segs = rel.split('/');
  const parents = segs.slice(0, -1).map((_, i) => `${root}${segs.slice(0, i + 1).join('/')}`);
  const r = await c.query<{ uri: string; under: boolean }>(
    `SELECT uri, uri LIKE $3 AS under FROM artifact WHERE run_id = $1 AND (uri = ANY($2::text[]) OR uri LIKE $3) LIMIT 1`,
    [runId, parents, likePrefix(`${root}${rel}/`)],
  );
  const row = r.rows[0];
  if (!row) return null;
  return row.under ? { kind: 'folder' } : { kind: 'file-above', path: row.uri.slice(root.length) };
}
