import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { id, pgText } from '@aft/contracts';
import { createProject, findProject, listProjectsWithActivity } from '@aft/db';
import { readProcedure, writeProcedure } from '../trpc';

const projectName = z
  .string()
  .trim()
  .min(1, 'a project name must not be empty')
  .max(100, 'a project name is at most 100 characters')
  .regex(/^[\p{L}\p{N}_.\- ]+$/u, 'a project name may hold letters, digits, spaces and _ . -');

export const projectsRouter = {
  create: writeProcedure
    .input(z.object({ name: projectName, description: pgText.max(2000).default('') }))
    .mutation(async ({ ctx, input }) => {
      const p = await createProject(ctx.db, {
        teamId: ctx.actor.teamId,
        name: input.name,
        description: input.description,
      });
      if (!p) throw new TRPCError({ code: 'CONFLICT', message: `project "${input.name}" already exists` });
      return p;
    }),

  /** Projects of the team with their run counts and last activity, most recently active first. */
  list: readProcedure.query(({ ctx }) => listProjectsWithActivity(ctx.db, ctx.actor.teamId)),

  get: readProcedure.input(z.object({ id })).query(async ({ ctx, input }) => {
    const p = await findProject(ctx.db, ctx.actor.teamId, input.id);
    if (!p) throw new TRPCError({ code: 'NOT_FOUND', message: `project ${input.id} not found` });
    return p;
  }),
};
