/** Teams: a new one is created with its first owner, in the caller's transaction (with its audit record). */
import { randomBytes } from 'node:crypto';
import type { PoolClient } from 'pg';
import type { Db } from './client';

/** Whether a team already has this slug (slugs are unique, and name the team in URLs and the team cookie). */
export async function teamSlugTaken(db: Pick<Db, 'prisma'>, slug: string): Promise<boolean> {
  return !!(await db.prisma.team.findUnique({ where: { slug }, select: { id: true } }));
}

/** Creates a team with `ownerId` as its owner (inside the caller's transaction); returns its id. */
export async function createTeamWithOwner(
  c: Pick<PoolClient, 'query'>,
  team: { slug: string; name: string; ownerId: string },
): Promise<string> {
  const id = `t${randomBytes(12).toString('hex')}`;
  await c.query('INSERT INTO team (id, slug, name) VALUES ($1, $2, $3)', [id, team.slug, team.name]);
  await c.query(`INSERT INTO membership (team_id, user_id, role) VALUES ($1, $2, 'owner')`, [id, team.ownerId]);
  return id;
}

/** The team with this slug, created (named after the slug) if there is none: fixtures and seeds. */
export function ensureTeam(db: Pick<Db, 'prisma'>, slug: string) {
  return db.prisma.team.upsert({ where: { slug }, create: { slug, name: slug }, update: {} });
}
