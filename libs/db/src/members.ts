/**
 * Memberships: who belongs to which team, with which role. The writes take a transaction's client, so that the
 * audit record of the change (audit-log.ts) commits or rolls back with it.
 */
import type { PoolClient } from 'pg';
import type { Db } from './client';

export type MemberRole = 'owner' | 'member' | 'viewer';

/** Higher outranks lower: a member who joins again through a link keeps the higher of their two roles. */
const ROLE_RANK: Record<MemberRole, number> = { viewer: 0, member: 1, owner: 2 };

/**
 * The team a signed-in user acts in and their role there: the team `preferredSlug` names if they are a member of it
 * (a stale cookie falls back), else the team they joined first. Null when they belong to no team.
 */
export async function actingMembership(
  db: Pick<Db, 'pool'>,
  userId: string,
  preferredSlug: string | null | undefined,
): Promise<{ teamId: string; role: MemberRole } | null> {
  const res = await db.pool.query<{ team_id: string; role: MemberRole }>(
    `SELECT m.team_id, m.role FROM membership m JOIN team t ON t.id = m.team_id
     WHERE m.user_id = $1 ORDER BY (t.slug = $2) DESC, m.created_at, t.slug LIMIT 1`,
    [userId, preferredSlug ?? ''],
  );
  const m = res.rows[0];
  return m ? { teamId: m.team_id, role: m.role } : null;
}

/** A user's teams with their role in each, in the order they joined them. */
export async function listUserTeams(db: Pick<Db, 'prisma'>, userId: string) {
  const memberships = await db.prisma.membership.findMany({
    where: { userId },
    select: { role: true, createdAt: true, team: { select: { id: true, slug: true, name: true } } },
    orderBy: [{ createdAt: 'asc' }],
  });
  return memberships.map((m) => ({ ...m.team, role: m.role as MemberRole }));
}

/** A team's members, in the order they joined. */
export async function listTeamMembers(db: Pick<Db, 'prisma'>, teamId: string) {
  const rows = await db.prisma.membership.findMany({
    where: { teamId },
    select: { role: true, createdAt: true, user: { select: { id: true, email: true, name: true } } },
    orderBy: [{ createdAt: 'asc' }],
  });
  return rows.map((m) => ({
    userId: m.user.id,
    email: m.user.email,
    name: m.user.name,
    role: m.role as MemberRole,
    joinedAt: m.createdAt,
  }));
}

/** A user's role in a team, or null when they are not a member of it. */
export async function findMemberRole(
  db: Pick<Db, 'prisma'>,
  teamId: string,
  userId: string,
): Promise<MemberRole | null> {
  const m = await db.prisma.membership.findUnique({
    where: { teamId_userId: { teamId, userId } },
    select: { role: true },
  });
  return m ? (m.role as MemberRole) : null;
}

/** The team's owners other than `userId` (a change that would leave a team without an owner is refused). */
export function countOtherOwners(db: Pick<Db, 'prisma'>, teamId: string, userId: string): Promise<number> {
  return db.prisma.membership.count({ where: { teamId, role: 'owner', userId: { not: userId } } });
}

/** Gives a member another role (inside the caller's transaction). */
export async function setMemberRole(
  c: Pick<PoolClient, 'query'>,
  teamId: string,
  userId: string,
  role: MemberRole,
): Promise<void> {
  await c.query('UPDATE membership SET role = $3 WHERE team_id = $1 AND user_id = $2', [teamId, userId, role]);
}

/** Takes a member out of a team (inside the caller's transaction). */
export async function removeMember(c: Pick<PoolClient, 'query'>, teamId: string, userId: string): Promise<void> {
  await c.query('DELETE FROM membership WHERE team_id = $1 AND user_id = $2', [teamId, userId]);
}

/**
 * Adds a user to a team with `role`, or, when they are a member already, with the higher of their role and `role`
 * (inside the caller's transaction; their row is locked while the two are compared). Returns the role they now have.
 */
export async function joinTeam(
  c: Pick<PoolClient, 'query'>,
  teamId: string,
  userId: string,
  role: MemberRole,
): Promise<MemberRole> {
  const cur = await c.query<{ role: MemberRole }>(
    'SELECT role FROM membership WHERE team_id = $1 AND user_id = $2 FOR UPDATE',
    [teamId, userId],
  );
  const was = cur.rows[0]?.role ?? null;
  const now = was && ROLE_RANK[was] >= ROLE_RANK[role] ? was : role;
  await c.query(
    `INSERT INTO membership (team_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT (team_id, user_id) DO UPDATE SET role = EXCLUDED.role`,
    [teamId, userId, now],
  );
  return now;
}

/** Makes a user a member of a team with `role` (they must not be one yet): fixtures and seeds. */
export async function addMember(db: Pick<Db, 'prisma'>, teamId: string, userId: string, role: MemberRole) {
  await db.prisma.membership.create({ data: { teamId, userId, role } });
}
