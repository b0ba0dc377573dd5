import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { id, pgText } from '@aft/contracts';
import { readProcedure, writeProcedure } from '../trpc';

const projectName = z
  .string()
  .trim()
  .min(1, 'a project name must not be empty')
  .max(100, 'a project name is at most 100 characters')
  .regex(/^[\p{L}\p{N}_.\- ]+$/u, 'a project name may hold letters, digits, spaces and _ . -');

const projectSelect = { id: true, name: true, description: true, createdAt: true } as const;

export const projectsRouter = {
  create: writeProcedure
    .input(z.object({ name: projectName, description: pgText.max(2000).default('') }))
    .mutation(async ({ ctx, input }) => {
      const exists = await ctx.db.prisma.project.findUnique({
        where: { teamId_name: { teamId: ctx.actor.teamId, name: input.name } },
        select: { id: true },
      });
      if (exists) throw new TRPCError({ code: 'CONFLICT', message: `project "${input.name}" already exists` });
      return ctx.db.prisma.project.create({
        data: { teamId: ctx.actor.teamId, name: input.name, description: input.description },
        select: projectSelect,
      });
    }),

  /** Projects of the team with their run counts and last activity, most recently active first. */
  list: readProcedure.query(async ({ ctx }) => {
    const res = await ctx.db.pool.query<{
      id: string;
      name: string;
      description: string;
      createdAt: Date;
      runs: number;
      running: number;
      lastActivity: Date | null;
    }>(
      `SELECT p.id, p.name, p.description, p.created_at AS "createdAt",
              count(r.id)::int AS runs, count(r.id) FILTER (WHERE r.status = 'running')::int AS running,
              max(r.updated_at) AS "lastActivity"
       FROM project p LEFT JOIN run r ON r.project_id = p.id
       WHERE p.team_id = $1
       GROUP BY p.id ORDER BY COALESCE(max(r.updated_at), p.created_at) DESC LIMIT 500`,
      [ctx.actor.teamId],
    );
    return res.rows;
  }),

  get: readProcedure.input(z.object({ id })).query(async ({ ctx, input }) => {
    const p = await ctx.db.prisma.project.findFirst({
      where: { id: input.id, teamId: ctx.actor.teamId },
      select: projectSelect,
    });
    if (!p) throw new TRPCError({ code: 'NOT_FOUND', message: `project ${input.id} not found` });
    return p;
  }),
};
