/**
 * Invitations by link: a token that adds whoever opens it, once, to a team. Only its SHA-256 is stored (the token
 * has 192 bits of entropy, so a fast hash is enough, as for API keys); the token itself is in the link alone.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { PoolClient } from 'pg';
import type { Db } from './client';
import type { MemberRole } from './members';

const hashInvitationToken = (token: string) => createHash('sha256').update(token).digest('hex');

/**
 * Makes an invitation to `teamId` (inside the caller's transaction), expiring after `expiresInDays`; `email`, when
 * given, is the only address that may accept it. Returns it with its token, which is shown once.
 */
export async function createInvitation(
  c: Pick<PoolClient, 'query'>,
  inv: { teamId: string; role: MemberRole; email: string | null; createdBy: string | null; expiresInDays: number },
): Promise<{ id: string; expiresAt: Date; token: string }> {
  const token = randomBytes(24).toString('base64url');
  const id = `i${randomBytes(12).toString('hex')}`;
  const res = await c.query<{ id: string; expiresAt: Date }>(
    `INSERT INTO invitation (id, team_id, role, email, hash, created_by, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(days => $7)) RETURNING id, expires_at AS "expiresAt"`,
    [id, inv.teamId, inv.role, inv.email, hashInvitationToken(token), inv.createdBy, inv.expiresInDays],
  );
  return { ...res.rows[0]!, token };
}

/** A team's invitations not yet used, revoked or expired, newest first. */
export function listOpenInvitations(db: Pick<Db, 'prisma'>, teamId: string) {
  return db.prisma.invitation.findMany({
    where: { teamId, acceptedAt: null, revokedAt: null, expiresAt: { gt: new Date() } },
    select: { id: true, role: true, email: true, createdAt: true, expiresAt: true },
    orderBy: { createdAt: 'desc' },
    take: 200,
  });
}

/** Revokes one of the team's invitations (inside the caller's transaction); false when none was open. */
export async function revokeInvitation(c: Pick<PoolClient, 'query'>, teamId: string, id: string): Promise<boolean> {
  const res = await c.query(
    'UPDATE invitation SET revoked_at = now() WHERE id = $1 AND team_id = $2 AND revoked_at IS NULL',
    [id, teamId],
  );
  return !!res.rowCount;
}

/** What the invitation behind `token` offers, with its state, for the page that asks to accept it; null if none. */
export function findInvitation(db: Pick<Db, 'prisma'>, token: string) {
  return db.prisma.invitation.findUnique({
    where: { hash: hashInvitationToken(token) },
    select: {
      role: true,
      email: true,
      expiresAt: true,
      acceptedAt: true,
      revokedAt: true,
      team: { select: { name: true, slug: true } },
    },
  });
}

/** An invitation as `claimInvitation` took it, with what accepting it still has to check. */
export interface ClaimedInvitation {
  id: string;
  teamId: string;
  teamSlug: string;
  role: MemberRole;
  expired: boolean;
  /** The address the invitation is for; null: whoever has the link. */
  invited: string | null;
  /** The address of the user claiming it. */
  email: string;
}

/**
 * Marks the invitation behind `token` accepted by `userId` (inside the caller's transaction), so that no one else
 * can use it; null when it is unknown, revoked or used. The caller checks `invited` and `expired`, and rolls the
 * transaction back when it refuses.
 */
export async function claimInvitation(
  c: Pick<PoolClient, 'query'>,
  token: string,
  userId: string,
): Promise<ClaimedInvitation | null> {
  const res = await c.query<ClaimedInvitation>(
    `UPDATE invitation i SET accepted_at = now(), accepted_by = $2
     FROM team t, app_user u
     WHERE t.id = i.team_id AND u.id = $2 AND i.hash = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL
     RETURNING i.id, i.team_id AS "teamId", t.slug AS "teamSlug", i.role, i.expires_at < now() AS expired,
               i.email AS invited, u.email`,
    [hashInvitationToken(token), userId],
  );
  return res.rows[0] ?? null;
}
