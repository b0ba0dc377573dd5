/**
 * Saved views: named URL queries of a project's runs table and compare page, shared with the team.
 *
 * Who may do what: everyone in the team (and `read` keys) lists and opens views; saving one needs the `log`
 * permission (members and owners, not viewers) and a signed-in person, since a view is someone's and API keys have
 * no one to name; renaming and deleting are for the view's creator and the team's owners. Creations, renames and
 * deletions are in the audit log.
 */
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import {
  id,
  SAVED_VIEW_KINDS,
  SAVED_VIEW_LIMITS,
  savedViewCreateInput,
  savedViewName,
  savedViewPath,
} from '@aft/contracts';
import {
  createSavedView,
  deleteSavedView,
  findSavedView,
  listSavedViews,
  renameSavedView,
  type SavedViewRow,
} from '@aft/db';
import { audit } from '../audit';
import { readProcedure, writeProcedure, type Actor } from '../trpc';

/** Saving and changing views: the `log` permission, from a signed-in person (a view names who saved it). */
const viewWriteProcedure = writeProcedure.use(async ({ ctx, next }) => {
  if (ctx.actor.via !== 'user' || !ctx.actor.userId) {
    throw new TRPCError({ code: 'FORBIDDEN', message: 'saved views are saved by signed-in members, not API keys' });
  }
  return next({ ctx: { ...ctx, userId: ctx.actor.userId } });
});

/** Whether `actor` may rename or delete `view`: its creator, or an owner of the team. */
const mayChange = (actor: Actor, view: SavedViewRow) => actor.role === 'owner' || view.createdById === actor.userId;

/** A view as the dashboard shows it: where it opens, and whether the caller may change it. */
const shown = (actor: Actor, v: SavedViewRow) => ({
  id: v.id,
  projectId: v.projectId,
  kind: v.kind,
  name: v.name,
  query: v.query,
  href: savedViewPath(v),
  createdBy: v.createdBy,
  createdAt: v.createdAt,
  updatedAt: v.updatedAt,
  canChange: actor.via === 'user' && actor.scopes.includes('log') && mayChange(actor, v),
});

const notFound = (viewId: string) => new TRPCError({ code: 'NOT_FOUND', message: `view ${viewId} not found` });
const duplicate = (name: string, kind: string) =>
  new TRPCError({
    code: 'CONFLICT',
    message: `invalid input — name: this project already has a ${kind} view named "${name}"; choose another name`,
  });

/** Loads a view for a change, or refuses: 404 when it is not the team's, 403 when the caller may not change it. */
async function viewToChange(ctx: { db: Parameters<typeof findSavedView>[0]; actor: Actor }, viewId: string) {
  const view = await findSavedView(ctx.db, ctx.actor.teamId, viewId);
  if (!view) throw notFound(viewId);
  if (!mayChange(ctx.actor, view)) {
    throw new TRPCError({
      code: 'FORBIDDEN',
      message: `view "${view.name}" was saved by ${view.createdBy ?? 'someone else'}: only they or a team owner may change it`,
    });
  }
  return view;
}

export const viewsRouter = {
  /** The project's views of one kind (the page's Views menu), by name, and whether the caller may save one. */
  list: readProcedure
    .input(z.object({ projectId: id, kind: z.enum(SAVED_VIEW_KINDS) }))
    .query(async ({ ctx, input }) => {
      const rows = await listSavedViews(
        ctx.db,
        ctx.actor.teamId,
        input.projectId,
        input.kind,
        SAVED_VIEW_LIMITS.perProjectKind,
      );
      if (!rows) throw new TRPCError({ code: 'NOT_FOUND', message: `project ${input.projectId} not found` });
      const canSave = ctx.actor.via === 'user' && ctx.actor.scopes.includes('log');
      return { items: rows.map((v) => shown(ctx.actor, v)), canSave };
    }),

  /** One view, with `href`: where `/views/<id>` sends the browser. */
  get: readProcedure.input(z.object({ id })).query(async ({ ctx, input }) => {
    const view = await findSavedView(ctx.db, ctx.actor.teamId, input.id);
    if (!view) throw notFound(input.id);
    return shown(ctx.actor, view);
  }),

  /** Saves the page's current query under a name, unique per project and kind. */
  create: viewWriteProcedure.input(savedViewCreateInput).mutation(async ({ ctx, input }) => {
    const { actor } = ctx;
    const r = await createSavedView(
      ctx.db.pool,
      { ...input, teamId: actor.teamId, userId: ctx.userId },
      SAVED_VIEW_LIMITS.perProjectKind,
      (c, view) =>
        audit(
          ctx.db,
          {
            teamId: actor.teamId,
            userId: ctx.userId,
            action: 'view.create',
            target: view.id,
            details: { name: view.name, kind: view.kind, projectId: view.projectId },
            ip: ctx.ip,
          },
          c,
        ),
    );
    if (r.ok) return shown(actor, r.view);
    if (r.reason === 'not-found')
      throw new TRPCError({ code: 'NOT_FOUND', message: `project ${input.projectId} not found` });
    if (r.reason === 'duplicate-name') throw duplicate(input.name, input.kind);
    throw new TRPCError({
      code: 'BAD_REQUEST',
      message: `this project already has ${SAVED_VIEW_LIMITS.perProjectKind} ${input.kind} views, the most it may hold: delete one first`,
    });
  }),

  /** Renames a view (its creator or a team owner). */
  rename: viewWriteProcedure.input(z.object({ id, name: savedViewName })).mutation(async ({ ctx, input }) => {
    const { actor } = ctx;
    const view = await viewToChange(ctx, input.id);
    const r = await renameSavedView(ctx.db.pool, actor.teamId, view.id, input.name, (c, before) =>
      audit(
        ctx.db,
        {
          teamId: actor.teamId,
          userId: ctx.userId,
          action: 'view.rename',
          target: before.id,
          details: { from: before.name, to: input.name, kind: before.kind, projectId: before.projectId },
          ip: ctx.ip,
        },
        c,
      ),
    );
    if (r.ok) return shown(actor, r.view);
    if (r.reason === 'duplicate-name') throw duplicate(input.name, view.kind);
    throw notFound(input.id);
  }),

  /** Deletes a view (its creator or a team owner). */
  delete: viewWriteProcedure.input(z.object({ id })).mutation(async ({ ctx, input }) => {
    const { actor } = ctx;
    const view = await viewToChange(ctx, input.id);
    const r = await deleteSavedView(ctx.db.pool, actor.teamId, view.id, (c, v) =>
      audit(
        ctx.db,
        {
          teamId: actor.teamId,
          userId: ctx.userId,
          action: 'view.delete',
          target: v.id,
          details: { name: v.name, kind: v.kind, projectId: v.projectId },
          ip: ctx.ip,
        },
        c,
      ),
    );
    if (!r.ok) throw notFound(input.id);
    return { id: input.id, deleted: true };
  }),
};
