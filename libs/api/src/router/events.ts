import { z } from 'zod';
import { eventInput, id, LIMITS, pgText } from '@aft/contracts';
import { insertEvent, listEvents } from '@aft/db';
import { logProcedure, readProcedure } from '../trpc';
import { alertOnEvent } from '../alerts/fire';
import { assertRuns } from './metrics';

export const eventsRouter = {
  /** Records an event (e.g. `degradation-detected` with its onset step and evidence). */
  log: logProcedure.input(eventInput).mutation(async ({ ctx, input }) => {
    const { runId, ...e } = input;
    const id = await insertEvent(ctx.db.pool, runId, ctx.actor.teamId, e);
    await alertOnEvent(ctx, runId, e);
    return { id };
  }),

  list: readProcedure
    .input(
      z.object({
        runId: id,
        kind: pgText.max(64).optional(),
        limit: z.number().int().min(1).max(LIMITS.pageSize).default(100),
      }),
    )
    .query(async ({ ctx, input }) => {
      await assertRuns(ctx.db, ctx.actor.teamId, [input.runId]);
      return listEvents(ctx.db, input.runId, input);
    }),
};
