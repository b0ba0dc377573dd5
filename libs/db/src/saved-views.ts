/**
 * Saved views (`saved_view`): a named URL query of a project's runs table or compare page, shared with the team.
 * A view belongs to a project, and through it to a team: every statement here is scoped by the team, so an id of
 * another team's view reads as one that does not exist. What a query may hold is checked by the API
 * (libs/contracts/src/saved-views.ts), whom a change is allowed to by the router (libs/api/src/router/views.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type { Db } from './client';
import { withTransaction } from './touch';

export type SavedViewKind = 'runs' | 'compare';

export interface SavedViewRow {
  id: string;
  projectId: string;
  kind: SavedViewKind;
  name: string;
  query: string;
  createdById: string | null;
  /** The creator's name, else their email; null once their account is gone. */
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

const SELECT = `SELECT v.id, v.project_id AS "projectId", v.kind, v.name, v.query, v.created_by AS "createdById",
       NULLIF(u.name, '') AS "creatorName", u.email AS "creatorEmail", v.created_at AS "createdAt",
       v.updated_at AS "updatedAt"
  FROM saved_view v JOIN project p ON p.id = v.project_id LEFT JOIN app_user u ON u.id = v.created_by`;

type Raw = Omit<SavedViewRow, 'createdBy'> & { creatorName: string | null; creatorEmail: string | null };
const row = ({ creatorName, creatorEmail, ...v }: Raw): SavedViewRow => ({
  ...v,
  createdBy: creatorName ?? creatorEmail,
});

const isUniqueViolation = (e: unknown) => (e as { code?: string }).code === '23505';

/** The project's views of one kind, by name; null when the team has no such project. */
export async function listSavedViews(
  db: Pick<Db, 'pool'>,
  teamId: string,
  projectId: string,
  kind: SavedViewKind,
  limit: number,
): Promise<SavedViewRow[] | null> {
  const project = await db.pool.query('SELECT 1 FROM project WHERE id = $1 AND team_id = $2', [projectId, teamId]);
  if (!project.rowCount) return null;
  const res = await db.pool.query<Raw>(
    `${SELECT} WHERE v.project_id = $1 AND p.team_id = $2 AND v.kind = $3 ORDER BY v.name, v.id LIMIT $4`,
    [projectId, teamId, kind, limit],
  );
  return res.rows.map(row);
}

/** One of the team's views, or null (none by that id, or another team's). */
export async function findSavedView(
  db: Pick<Db, 'pool'> | { pool: Pick<PoolClient, 'query'> },
  teamId: string,
  id: string,
): Promise<SavedViewRow | null> {
  const res = await db.pool.query<Raw>(`${SELECT} WHERE v.id = $1 AND p.team_id = $2`, [id, teamId]);
  return res.rows[0] ? row(res.rows[0]) : null;
}

export type SavedViewWrite<T> = { ok: true; view: T } | { ok: false; reason: 'not-found' | 'duplicate-name' | 'full' };

/**
 * Saves a view in one of the team's projects, unless the project already holds a view of that kind and name, or
 * `max` views of that kind. `within` runs in the same transaction after the insert (the audit record of it).
 */
export async function createSavedView(
  pool: Pool,
  v: { teamId: string; projectId: string; kind: SavedViewKind; name: string; query: string; userId: string | null },
  max: number,
  within?: (c: PoolClient, view: SavedViewRow) => Promise<void>,
): Promise<SavedViewWrite<SavedViewRow>> {
  return withTransaction(pool, async (c) => {
    // the project row is locked so that two saves at once cannot both pass the count below
    const project = await c.query('SELECT 1 FROM project WHERE id = $1 AND team_id = $2 FOR UPDATE', [
      v.projectId,
      v.teamId,
    ]);
    if (!project.rowCount) return { ok: false, reason: 'not-found' } as const;
    const n = await c.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM saved_view WHERE project_id = $1 AND kind = $2',
      [v.projectId, v.kind],
    );
    if (n.rows[0]!.n >= max) return { ok: false, reason: 'full' } as const;
    const id = `v${randomBytes(12).toString('hex')}`;
    const ins = await c.query(
      `INSERT INTO saved_view (id, project_id, kind, name, query, created_by) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (project_id, kind, name) DO NOTHING`,
      [id, v.projectId, v.kind, v.name, v.query, v.userId],
    );
    if (!ins.rowCount) return { ok: false, reason: 'duplicate-name' } as const;
    const view = (await findSavedView({ pool: c }, v.teamId, id))!;
    await within?.(c, view);
    return { ok: true, view } as const;
  });
}

/** Renames one of the team's views; `within` runs in the same transaction (the audit record). */
export async function renameSavedView(
  pool: Pool,
  teamId: string,
  id: string,
  name: string,
  within?: (c: PoolClient, before: SavedViewRow) => Promise<void>,
): Promise<SavedViewWrite<SavedViewRow>> {
  try {
    return await withTransaction(pool, async (c) => {
      const before = await findSavedView({ pool: c }, teamId, id);
      if (!before) return { ok: false, reason: 'not-found' } as const;
      await c.query('UPDATE saved_view SET name = $2, updated_at = now() WHERE id = $1', [id, name]);
      await within?.(c, before);
      return { ok: true, view: (await findSavedView({ pool: c }, teamId, id))! } as const;
    });
  } catch (e) {
    if (isUniqueViolation(e)) return { ok: false, reason: 'duplicate-name' };
    throw e;
  }
}

/** Deletes one of the team's views; `within` runs in the same transaction (the audit record). */
export async function deleteSavedView(
  pool: Pool,
  teamId: string,
  id: string,
  within?: (c: PoolClient, view: SavedViewRow) => Promise<void>,
): Promise<SavedViewWrite<{ id: string }>> {
  return withTransaction(pool, async (c) => {
    const view = await findSavedView({ pool: c }, teamId, id);
    if (!view) return { ok: false, reason: 'not-found' } as const;
    await c.query('DELETE FROM saved_view WHERE id = $1', [id]);
    await within?.(c, view);
    return { ok: true, view: { id } } as const;
  });
}
