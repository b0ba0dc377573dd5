import { z } from 'zod';
import { decodeNumber, encodeNumber, id, LIMITS, pgText, samplesLogInput, step } from '@aft/contracts';
import { insertSamples, listSamples, sampleSplits } from '@aft/db';
import { gradeSamples } from '../grading';
import { chargeRate, logProcedure, readProcedure } from '../trpc';
import { assertRuns } from './metrics';

export const samplesRouter = {
  /**
   * Stores samples; a retried batch stores each (step, split, question, sample index) once. Samples of shipped
   * questions that come without `correct` are graded here (../grading.ts).
   */
  log: logProcedure.input(samplesLogInput).mutation(async ({ ctx, input }) => {
    await chargeRate(ctx, input.rows.length);
    return insertSamples(
      ctx.db.pool,
      input.runId,
      ctx.actor.teamId,
      gradeSamples(
        input.rows.map((r) => ({
          ...r,
          score: r.score === null || r.score === undefined ? null : decodeNumber(r.score),
        })),
      ),
    );
  }),

  /** A run's samples, filtered by step, split, question or correctness; ordered by question then rank. */
  list: readProcedure
    .input(
      z.object({
        runId: id,
        step: step.optional(),
        split: pgText.max(32).optional(),
        questionId: pgText.max(200).optional(),
        correct: z.boolean().optional(),
        cursor: z.number().int().min(0).optional(),
        limit: z.number().int().min(1).max(LIMITS.pageSize).default(100),
      }),
    )
    .query(async ({ ctx, input }) => {
      await assertRuns(ctx.db, ctx.actor.teamId, [input.runId]);
      const { rows, nextOffset } = await listSamples(ctx.db, input, { offset: input.cursor ?? 0, limit: input.limit });
      return {
        items: rows.map((r) => ({ ...r, score: r.score === null ? null : encodeNumber(r.score) })),
        nextCursor: nextOffset,
      };
    }),

  /** What a run's samples hold: each (split, step) with its number of questions and samples. */
  splits: readProcedure.input(z.object({ runId: id })).query(async ({ ctx, input }) => {
    await assertRuns(ctx.db, ctx.actor.teamId, [input.runId]);
    return sampleSplits(ctx.db.pool, input.runId);
  }),
};
