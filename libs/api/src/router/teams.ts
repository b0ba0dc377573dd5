/**
 * Teams, members and roles, invitations by link, API keys and the audit log. Owners manage; every change to
 * who can do what is written to the audit log in the same transaction as the change.
 */
import { randomBytes } from 'node:crypto';
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { pgText } from '@aft/contracts';
import {
  API_KEY_SCOPES,
  claimInvitation,
  countOtherOwners,
  createApiKey,
  createInvitation,
  createTeamWithOwner,
  findInvitation,
  findMemberRole,
  findUser,
  joinTeam,
  listApiKeys,
  listAuditEvents,
  listOpenInvitations,
  listTeamMembers,
  listUserTeams,
  removeMember,
  revokeApiKey,
  revokeInvitation,
  setMemberRole,
  teamSlugTaken,
  withTransaction,
} from '@aft/db';
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

function by(ctx: Context & { actor: Actor }) {
  return { teamId: ctx.actor.teamId, userId: ctx.actor.userId, keyId: ctx.actor.keyId, ip: ctx.ip ?? null };
}

const LAST_OWNER = 'a team needs at least one owner: make someone else owner first';

/** The role of `userId` in the caller's team; a 404 when they are not a member of it. */
async function memberRoleOrThrow(ctx: Context & { actor: Actor }, userId: string): Promise<Role> {
  const role = await findMemberRole(ctx.db, ctx.actor.teamId, userId);
  if (!role) throw new TRPCError({ code: 'NOT_FOUND', message: `user ${userId} is not a member of this team` });
  return role;
}

export const teamsRouter = {
  /** The signed-in user, their teams with their role in each, and the team the dashboard is working in. */
  me: accountProcedure.query(async ({ ctx }) => {
    const user = await findUser(ctx.db, ctx.userId);
    if (!user) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'not signed in' });
    const teams = await listUserTeams(ctx.db, ctx.userId);
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
      if (await teamSlugTaken(ctx.db, s)) {
        throw new TRPCError({ code: 'CONFLICT', message: `the team slug "${s}" is taken; choose another` });
      }
      return withTransaction(ctx.db.pool, async (c) => {
        const id = await createTeamWithOwner(c, { slug: s, name: input.name, ownerId: ctx.userId });
        await audit(ctx.db, { teamId: id, userId: ctx.userId, action: 'team.create', target: s, ip: ctx.ip }, c);
        return { id, slug: s, name: input.name, role: 'owner' as Role };
      });
    }),

  members: readProcedure.query(({ ctx }) => listTeamMembers(ctx.db, ctx.actor.teamId)),

  setRole: manageProcedure.input(z.object({ userId: cuid, role })).mutation(async ({ ctx, input }) => {
    const { teamId } = ctx.actor;
    const was = await memberRoleOrThrow(ctx, input.userId);
    if (was === 'owner' && input.role !== 'owner' && (await countOtherOwners(ctx.db, teamId, input.userId)) === 0) {
      throw new TRPCError({ code: 'CONFLICT', message: LAST_OWNER });
    }
    await withTransaction(ctx.db.pool, async (c) => {
      await setMemberRole(c, teamId, input.userId, input.role);
      await audit(
        ctx.db,
        { ...by(ctx), action: 'member.role', target: input.userId, details: { from: was, to: input.role } },
        c,
      );
    });
    return { userId: input.userId, role: input.role };
  }),

  removeMember: manageProcedure.input(z.object({ userId: cuid })).mutation(async ({ ctx, input }) => {
    const { teamId } = ctx.actor;
    const was = await memberRoleOrThrow(ctx, input.userId);
    if (was === 'owner' && (await countOtherOwners(ctx.db, teamId, input.userId)) === 0) {
      throw new TRPCError({ code: 'CONFLICT', message: LAST_OWNER });
    }
    await withTransaction(ctx.db.pool, async (c) => {
      await removeMember(c, teamId, input.userId);
      await audit(ctx.db, { ...by(ctx), action: 'member.remove', target: input.userId, details: { role: was } }, c);
    });
    return { userId: input.userId, removed: true };
  }),
};

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
      const email = input.email ?? null;
      const inv = await withTransaction(ctx.db.pool, async (c) => {
        const created = await createInvitation(c, {
          teamId: ctx.actor.teamId,
          role: input.role,
          email,
          createdBy: ctx.actor.userId,
          expiresInDays: input.expiresInDays,
        });
        const details = { role: input.role, email };
        await audit(ctx.db, { ...by(ctx), action: 'invitation.create', target: created.id, details }, c);
        return created;
      });
      return {
        id: inv.id,
        role: input.role,
        email,
        expiresAt: inv.expiresAt,
        token: inv.token,
        path: `/invite/${inv.token}`,
      };
    }),

  /** Invitations not yet used, revoked or expired. */
  list: manageProcedure.query(({ ctx }) => listOpenInvitations(ctx.db, ctx.actor.teamId)),

  revoke: manageProcedure.input(z.object({ id: cuid })).mutation(async ({ ctx, input }) => {
    await withTransaction(ctx.db.pool, async (c) => {
      if (!(await revokeInvitation(c, ctx.actor.teamId, input.id)))
        throw new TRPCError({ code: 'NOT_FOUND', message: `invitation ${input.id} not found` });
      await audit(ctx.db, { ...by(ctx), action: 'invitation.revoke', target: input.id }, c);
    });
    return { id: input.id, revoked: true };
  }),

  /** What an invitation link offers, for the page that asks to accept it. */
  preview: accountProcedure.input(z.object({ token })).query(async ({ ctx, input }) => {
    const inv = await findInvitation(ctx.db, input.token);
    if (!inv || inv.revokedAt || inv.acceptedAt)
      throw new TRPCError({ code: 'NOT_FOUND', message: INVITATION_NOT_FOUND });
    const me = inv.email ? await findUser(ctx.db, ctx.userId) : null;
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
      const inv = await claimInvitation(c, input.token, ctx.userId);
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
      const now = await joinTeam(c, inv.teamId, ctx.userId, inv.role);
      await audit(
        ctx.db,
        {
          teamId: inv.teamId,
          userId: ctx.userId,
          action: 'member.join',
          target: ctx.userId,
          details: { role: now, invitation: inv.id },
          ip: ctx.ip,
        },
        c,
      );
      return { team: inv.teamSlug, role: now };
    });
  }),
};

export const keysRouter = {
  list: manageProcedure.query(({ ctx }) => listApiKeys(ctx.db, ctx.actor.teamId)),

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
      const scopes = [...new Set(input.scopes)];
      const k = await withTransaction(ctx.db.pool, async (c) => {
        const created = await createApiKey(c, { teamId: ctx.actor.teamId, name: input.name, scopes });
        const details = { name: input.name, prefix: created.prefix, scopes };
        await audit(ctx.db, { ...by(ctx), action: 'key.create', target: created.id, details }, c);
        return created;
      });
      return { id: k.id, name: input.name, prefix: k.prefix, scopes, key: k.key };
    }),

  /** Refused from the very next request on, by every server. */
  revoke: manageProcedure.input(z.object({ id: cuid })).mutation(async ({ ctx, input }) => {
    await withTransaction(ctx.db.pool, async (c) => {
      const k = await revokeApiKey(c, ctx.actor.teamId, input.id);
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
    .query(({ ctx, input }) => listAuditEvents(ctx.db, ctx.actor.teamId, input)),
};
