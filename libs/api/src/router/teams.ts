/**
 * Teams, members and roles, invitations by link, API keys and the audit log. Owners manage; every change to
 * who can do what is written to the audit log in the same transaction as the change.
 */
import { createHash, randomBytes } from 'node:crypto';
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { pgText } from '@aft/contracts';
import { API_KEY_SCOPES, generateApiKey, withTransaction } from '@aft/db';
import { audit } from '../audit';
import { accountProcedure, manageProcedure, readProcedure, type Actor, type Context, type Role } from '../trpc';

const role = z.enum(['owner', 'member', 'viewer'], { message: 'a role is one of owner, member, viewer' });
const cuid = pgText.min(1, 'an id must not be empty').max(64, 'an id is at most 64 characters');
const teamName = pgText
  .trim()
  .min(1, 'a team name must not be empty')
  .max(100, 'a team name is at most 100 characters');
const slug = z
  .string()
  .min(2, 'a team slug is at least 2 characters')
  .max(48, 'a team slug is at most 48 characters')
  .regex(/^[a-z0-9][a-z0-9-]*$/, 'a team slug holds lowercase letters, digits and -, starting with a letter or digit');
const token = z.string().min(16, 'that is not an invitation token').max(128, 'that is not an invitation token');

const INVITATION_NOT_FOUND = 'this invitation link is not valid: it may have been revoked, used or mistyped';

function hashToken(t: string): string {
  return createHash('sha256').update(t).digest('hex');
}

function by(ctx: Context & { actor: Actor }) {
  return { teamId: ctx.actor.teamId, userId: ctx.actor.userId, keyId: ctx.actor.keyId, ip: ctx.ip ?? null };
}

/** The team's owners other than `userId`: a change that would leave a team without an owner is refused. */
async function otherOwners(ctx: Context, teamId: string, userId: string): Promise<number> {
  return ctx.db.prisma.membership.count({ where: { teamId, role: 'owner', userId: { not: userId } } });
}

export const teamsRouter = {
  /** The signed-in user, their teams with their role in each, and the team the dashboard is working in. */
  me: accountProcedure.query(async ({ ctx }) => {
    const user = await ctx.db.prisma.user.findUnique({
      where: { id: ctx.userId },
      select: { id: true, email: true, name: true },
    });
    if (!user) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'not signed in' });
    const memberships = await ctx.db.prisma.membership.findMany({
      where: { userId: ctx.userId },
      select: { role: true, createdAt: true, team: { select: { id: true, slug: true, name: true } } },
      orderBy: [{ createdAt: 'asc' }],
    });
    const teams = memberships.map((m) => ({ ...m.team, role: m.role as Role }));
    const current = teams.find((t) => t.slug === ctx.team) ?? teams[0] ?? null;
    return { user, teams, current };
  }),

  create: accountProcedure
    .input(z.object({ name: teamName, slug: slug.optional() }))
    .mutation(async ({ ctx, input }) => {
      const s =
        input.slug ??
        `${
          input.name
            .toLowerCase()
            .replace(/[^a-z0-9]+/g, '-')
            .replace(/^-+|-+$/g, '')
            .slice(0, 40) || 'team'
        }-${randomBytes(3).toString('hex')}`;
      if (await ctx.db.prisma.team.findUnique({ where: { slug: s }, select: { id: true } })) {
        throw new TRPCError({ code: 'CONFLICT', message: `the team slug "${s}" is taken; choose another` });
      }
      return withTransaction(ctx.db.pool, async (c) => {
        const id = `t${randomBytes(12).toString('hex')}`;
        await c.query('INSERT INTO team (id, slug, name) VALUES ($1, $2, $3)', [id, s, input.name]);
        await c.query(`INSERT INTO membership (team_id, user_id, role) VALUES ($1, $2, 'owner')`, [id, ctx.userId]);
        await audit(ctx.db, { teamId: id, userId: ctx.userId, action: 'team.create', target: s, ip: ctx.ip }, c);
        return { id, slug: s, name: input.name, role: 'owner' as Role };
      });
    }),

  members: readProcedure.query(async ({ ctx }) => {
    const rows = await ctx.db.prisma.membership.findMany({
      where: { teamId: ctx.actor.teamId },
      select: { role: true, createdAt: true, user: { select: { id: true, email: true, name: true } } },
      orderBy: [{ createdAt: 'asc' }],
    });
    return rows.map((m) => ({
      userId: m.user.id,
      email: m.user.email,
      name: m.user.name,
      role: m.role as Role,
      joinedAt: m.createdAt,
    }));
  }),

  setRole: manageProcedure.input(z.object({ userId: cuid, role })).mutation(async ({ ctx, input }) => {
    const { teamId } = ctx.actor;
    const m = await ctx.db.prisma.membership.findUnique({ where: { teamId_userId: { teamId, userId: input.userId } } });
    if (!m) throw new TRPCError({ code: 'NOT_FOUND', message: `user ${input.userId} is not a member of this team` });
    if (m.role === 'owner' && input.role !== 'owner' && (await otherOwners(ctx, teamId, input.userId)) === 0) {
      throw new TRPCError({
        code: 'CONFLICT',
        message: 'a team needs at least one owner: make someone else owner first',
      });
    }
    await withTransaction(ctx.db.pool, async (c) => {
      await c.query('UPDATE membership SET role = $3 WHERE team_id = $1 AND user_id = $2', [
        teamId,
        input.userId,
        input.role,
      ]);
      await audit(
        ctx.db,
        { ...by(ctx), action: 'member.role', target: input.userId, details: { from: m.role, to: input.role } },
        c,
      );
    });
    return { userId: input.userId, role: input.role };
  }),

  removeMember: manageProcedure.input(z.object({ userId: cuid })).mutation(async ({ ctx, input }) => {
    const { teamId } = ctx.actor;
    const m = await ctx.db.prisma.membership.findUnique({ where: { teamId_userId: { teamId, userId: input.userId } } });
    if (!m) throw new TRPCError({ code: 'NOT_FOUND', message: `user ${input.userId} is not a member of this team` });
    if (m.role === 'owner' && (await otherOwners(ctx, teamId, input.userId)) === 0) {
      throw new TRPCError({
        code: 'CONFLICT',
        message: 'a team needs at least one owner: make someone else owner first',
      });
    }
    await withTransaction(ctx.db.pool, async (c) => {
      await c.query('DELETE FROM membership WHERE team_id = $1 AND user_id = $2', [teamId, input.userId]);
      await audit(ctx.db, { ...by(ctx), action: 'member.remove', target: input.userId, details: { role: m.role } }, c);
    });
    return { userId: input.userId, removed: true };
  }),
};

const invitationSelect = { id: true, role: true, email: true, createdAt: true, expiresAt: true } as const;

export const invitationsRouter = {
  /** A link that adds whoever opens it, once, to this team. The token is shown here only. */
  create: manageProcedure
    .input(
      z.object({
        role: role.default('member'),
        email: z.email('an email address like ada@example.com').max(320).optional(),
        expiresInDays: z.number().int().min(1, 'at least 1 day').max(30, 'at most 30 days').default(7),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      const t = randomBytes(24).toString('base64url');
      const inv = await withTransaction(ctx.db.pool, async (c) => {
        const id = `i${randomBytes(12).toString('hex')}`;
        const res = await c.query<{ id: string; expiresAt: Date }>(
          `INSERT INTO invitation (id, team_id, role, email, hash, created_by, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(days => $7)) RETURNING id, expires_at AS "expiresAt"`,
          [id, ctx.actor.teamId, input.role, input.email ?? null, hashToken(t), ctx.actor.userId, input.expiresInDays],
        );
        await audit(
          ctx.db,
          {
            ...by(ctx),
            action: 'invitation.create',
            target: id,
            details: { role: input.role, email: input.email ?? null },
          },
          c,
        );
        return res.rows[0]!;
      });
      return {
        id: inv.id,
        role: input.role,
        email: input.email ?? null,
        expiresAt: inv.expiresAt,
        token: t,
        path: `/invite/${t}`,
      };
    }),

  /** Invitations not yet used, revoked or expired. */
  list: manageProcedure.query(({ ctx }) =>
    ctx.db.prisma.invitation.findMany({
      where: { teamId: ctx.actor.teamId, acceptedAt: null, revokedAt: null, expiresAt: { gt: new Date() } },
      select: invitationSelect,
      orderBy: { createdAt: 'desc' },
      take: 200,
    }),
  ),

  revoke: manageProcedure.input(z.object({ id: cuid })).mutation(async ({ ctx, input }) => {
    await withTransaction(ctx.db.pool, async (c) => {
      const res = await c.query(
        'UPDATE invitation SET revoked_at = now() WHERE id = $1 AND team_id = $2 AND revoked_at IS NULL',
        [input.id, ctx.actor.teamId],
      );
      if (!res.rowCount) throw new TRPCError({ code: 'NOT_FOUND', message: `invitation ${input.id} not found` });
      await audit(ctx.db, { ...by(ctx), action: 'invitation.revoke', target: input.id }, c);
    });
    return { id: input.id, revoked: true };
  }),

  /** What an invitation link offers, for the page that asks to accept it. */
  preview: accountProcedure.input(z.object({ token })).query(async ({ ctx, input }) => {
    const inv = await ctx.db.prisma.invitation.findUnique({
      where: { hash: hashToken(input.token) },
      select: {
        role: true,
        email: true,
        expiresAt: true,
        acceptedAt: true,
        revokedAt: true,
        team: { select: { name: true, slug: true } },
      },
    });
    if (!inv || inv.revokedAt || inv.acceptedAt)
      throw new TRPCError({ code: 'NOT_FOUND', message: INVITATION_NOT_FOUND });
    const me = inv.email
      ? await ctx.db.prisma.user.findUnique({ where: { id: ctx.userId }, select: { email: true } })
      : null;
    return {
      team: inv.team,
      role: inv.role as Role,
      expiresAt: inv.expiresAt,
      expired: inv.expiresAt < new Date(),
      /** Who the invitation is for (null: whoever has the link), and whether that is the signed-in user. */
      email: inv.email,
      forYou: !inv.email || inv.email.toLowerCase() === me?.email.toLowerCase(),
    };
  }),

  /** Joins the team (once per link). A member who already has a role keeps the higher of the two. */
  accept: accountProcedure.input(z.object({ token })).mutation(async ({ ctx, input }) => {
    return withTransaction(ctx.db.pool, async (c) => {
      const res = await c.query<{
        id: string;
        team_id: string;
        role: Role;
        expired: boolean;
        slug: string;
        invited: string | null;
        email: string;
      }>(
        `UPDATE invitation i SET accepted_at = now(), accepted_by = $2
         FROM team t, app_user u
         WHERE t.id = i.team_id AND u.id = $2 AND i.hash = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL
         RETURNING i.id, i.team_id, i.role, i.expires_at < now() AS expired, t.slug, i.email AS invited, u.email`,
        [hashToken(input.token), ctx.userId],
      );
      const inv = res.rows[0];
      if (!inv) throw new TRPCError({ code: 'NOT_FOUND', message: INVITATION_NOT_FOUND });
      // a link that names a person is theirs alone, whoever else it reaches (throwing undoes the UPDATE)
      if (inv.invited && inv.invited.toLowerCase() !== inv.email.toLowerCase())
        throw new TRPCError({
          code: 'FORBIDDEN',
          message:
            `this invitation is for ${inv.invited}, and you are signed in as ${inv.email}: ` +
            'sign in with that address to accept it',
        });
      if (inv.expired)
        throw new TRPCError({
          code: 'BAD_REQUEST',
          message: 'this invitation has expired: ask an owner of the team for a new link',
        });
      const rank = { viewer: 0, member: 1, owner: 2 } as const;
      const cur = await c.query<{ role: Role }>(
        'SELECT role FROM membership WHERE team_id = $1 AND user_id = $2 FOR UPDATE',
        [inv.team_id, ctx.userId],
      );
      const was = cur.rows[0]?.role ?? null;
      const now = was && rank[was] >= rank[inv.role] ? was : inv.role;
      await c.query(
        `INSERT INTO membership (team_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT (team_id, user_id) DO UPDATE SET role = EXCLUDED.role`,
        [inv.team_id, ctx.userId, now],
      );
      await audit(
        ctx.db,
        {
          teamId: inv.team_id,
          userId: ctx.userId,
          action: 'member.join',
          target: ctx.userId,
          details: { role: now, invitation: inv.id },
          ip: ctx.ip,
        },
        c,
      );
      return { team: inv.slug, role: now };
    });
  }),
};

const keySelect = {
  id: true,
  name: true,
  prefix: true,
  scopes: true,
  createdAt: true,
  lastUsedAt: true,
  revokedAt: true,
} as const;

export const keysRouter = {
  list: manageProcedure.query(({ ctx }) =>
    ctx.db.prisma.apiKey.findMany({
      where: { teamId: ctx.actor.teamId },
      select: keySelect,
      orderBy: { createdAt: 'desc' },
      take: 500,
    }),
  ),

  /** A new key; the secret is in this response only (only its hash is stored). */
  create: manageProcedure
    .input(
      z.object({
        name: pgText
          .trim()
          .min(1, 'a key needs a name, e.g. "cluster workers"')
          .max(100, 'a key name is at most 100 characters'),
        scopes: z
          .array(z.enum(API_KEY_SCOPES, { message: `a scope is one of ${API_KEY_SCOPES.join(', ')}` }))
          .min(1, 'give a key at least one scope')
          .max(3)
          .default([...API_KEY_SCOPES]),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      const k = generateApiKey();
      const scopes = [...new Set(input.scopes)];
      const id = `k${randomBytes(12).toString('hex')}`;
      await withTransaction(ctx.db.pool, async (c) => {
        await c.query('INSERT INTO api_key (id, team_id, name, prefix, hash, scopes) VALUES ($1, $2, $3, $4, $5, $6)', [
          id,
          ctx.actor.teamId,
          input.name,
          k.prefix,
          k.hash,
          scopes,
        ]);
        await audit(
          ctx.db,
          { ...by(ctx), action: 'key.create', target: id, details: { name: input.name, prefix: k.prefix, scopes } },
          c,
        );
      });
      return { id, name: input.name, prefix: k.prefix, scopes, key: k.key };
    }),

  /** Refused from the very next request on, by every server. */
  revoke: manageProcedure.input(z.object({ id: cuid })).mutation(async ({ ctx, input }) => {
    await withTransaction(ctx.db.pool, async (c) => {
      const res = await c.query<{ name: string; prefix: string }>(
        'UPDATE api_key SET revoked_at = now() WHERE id = $1 AND team_id = $2 AND revoked_at IS NULL RETURNING name, prefix',
        [input.id, ctx.actor.teamId],
      );
      const k = res.rows[0];
      if (!k) throw new TRPCError({ code: 'NOT_FOUND', message: `API key ${input.id} not found or already revoked` });
      await audit(
        ctx.db,
        { ...by(ctx), action: 'key.revoke', target: input.id, details: { name: k.name, prefix: k.prefix } },
        c,
      );
    });
    return { id: input.id, revoked: true };
  }),
};

export const auditRouter = {
  /** The team's audit log, newest first: its own events and the sign-ins of its members. */
  list: manageProcedure
    .input(
      z
        .object({
          limit: z.number().int().min(1).max(200, 'at most 200 events per page').default(50),
          cursor: z
            .string()
            .regex(/^\d{1,19}$/, 'a cursor is the nextCursor of the previous page')
            .nullish(),
        })
        .default({ limit: 50 }),
    )
    .query(async ({ ctx, input }) => {
      const res = await ctx.db.pool.query<{
        id: string;
        action: string;
        target: string | null;
        details: Record<string, unknown>;
        ip: string | null;
        createdAt: Date;
        user: string | null;
        key: string | null;
      }>(
        `SELECT e.id::text AS id, e.action, e.target, e.details, e.ip, e.created_at AS "createdAt", u.email AS user, k.name AS key
         FROM audit_event e LEFT JOIN app_user u ON u.id = e.user_id LEFT JOIN api_key k ON k.id = e.key_id
         WHERE (e.team_id = $1 OR (e.team_id IS NULL AND e.user_id IN (SELECT user_id FROM membership WHERE team_id = $1)))
           AND ($2::bigint IS NULL OR e.id < $2::bigint)
         ORDER BY e.id DESC LIMIT $3`,
        [ctx.actor.teamId, input.cursor ?? null, input.limit + 1],
      );
      const items = res.rows.slice(0, input.limit);
      return { items, nextCursor: res.rows.length > input.limit ? items[items.length - 1]!.id : null };
    }),
};
