import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { decodeNumber, encodeNumber, id, LIMITS, metricKey, metricsLogInput, step } from '@aft/contracts';
import {
  insertMetricPoints,
  missingRuns,
  querySeries,
  querySeriesPacked,
  type SeriesRequest,
  runMetricKeys,
  type Db,
  type MetricPoint,
  type PointColumns,
  type Series,
} from '@aft/db';
import { chargeRate, logProcedure, readProcedure, type Actor, type Context } from '../trpc';
import { alertOnMetrics } from '../alerts/fire';

/** Throws NOT_FOUND naming the runs that are not the team's. */
export async function assertRuns(db: Db, teamId: string, runIds: readonly string[]) {
  const missing = await missingRuns(db.pool, teamId, runIds);
  if (missing.length) {
    throw new TRPCError({
      code: 'NOT_FOUND',
      message: `run${missing.length > 1 ? 's' : ''} ${missing.join(', ')} not found`,
    });
  }
}

/**
 * Counts `points` (the most a call can return: series × buckets) against the request's read budget before the
 * call reads anything: the calls of one batch share LIMITS.pointsPerRequest.
 */
function chargeReads(ctx: Context, points: number) {
  const total = ctx.reads.points + points;
  if (total > LIMITS.pointsPerRequest) {
    throw new TRPCError({
      code: 'BAD_REQUEST',
      message: `this request asks for up to ${total.toLocaleString('en-US')} points (runs × keys × buckets over its calls); one request reads at most ${LIMITS.pointsPerRequest.toLocaleString('en-US')}: ask for fewer runs, keys or buckets, or split the request`,
    });
  }
  ctx.reads.points = total;
}

const seriesInput = z
  .object({
    runIds: z.array(id).min(1).max(LIMITS.runsPerSeriesQuery, `at most ${LIMITS.runsPerSeriesQuery} runs`),
    keys: z.array(metricKey).min(1).max(LIMITS.keysPerSeriesQuery, `at most ${LIMITS.keysPerSeriesQuery} keys`),
    buckets: z.number().int().min(10).max(LIMITS.maxBuckets).default(1000),
    minStep: step.optional(),
    maxStep: step.optional(),
    /** Bucketed series also get each bucket's wall time (raw ones always have theirs). */
    withTimes: z.boolean().default(false),
  })
  .refine((v) => v.runIds.length * v.keys.length <= LIMITS.seriesPerQuery, {
    message: `runs × keys is at most ${LIMITS.seriesPerQuery}`,
  })
  .refine((v) => v.minStep === undefined || v.maxStep === undefined || v.minStep <= v.maxStep, {
    message: 'minStep must be <= maxStep',
    path: ['minStep'],
  });

/** A series request's reads, once its budget is charged and its runs are checked to be the team's. */
async function seriesReads(
  ctx: Context & { actor: Actor },
  input: z.output<typeof seriesInput>,
): Promise<SeriesRequest[]> {
  const runIds = [...new Set(input.runIds)];
  const keys = [...new Set(input.keys)];
  chargeReads(ctx, runIds.length * keys.length * input.buckets);
  await assertRuns(ctx.db, ctx.actor.teamId, runIds);
  return runIds.flatMap((runId) =>
    keys.map((key) => ({
      runId,
      key,
      buckets: input.buckets,
      minStep: input.minStep,
      maxStep: input.maxStep,
      withTimes: input.withTimes,
    })),
  );
}

/** A series as the API returns it: columns (what uPlot draws), non-finite values as "NaN"/"Infinity"/"-Infinity". */
export type WireSeries = Series;

export const metricsRouter = {
  /** Stores up to 10,000 points; a retried batch stores each (run, key, step) once. */
  log: logProcedure.input(metricsLogInput).mutation(async ({ ctx, input }) => {
    const { packed, columns, points } = input;
    await chargeRate(ctx, packed ? packed.key.length : columns ? columns.key.length : points!.length);
    const batch: PointColumns | MetricPoint[] = packed
      ? packed
      : columns
        ? { ...columns, value: columns.value.map(decodeNumber) }
        : points!.map((p) => ({ key: p.key, step: p.step, value: decodeNumber(p.value), time: p.time }));
    const stored = await insertMetricPoints(ctx.db.pool, input.runId, batch, {
      teamId: ctx.actor.teamId,
      maxKeys: LIMITS.metricKeysPerRun,
    });
    await alertOnMetrics(ctx, input.runId, batch);
    return stored;
  }),

  /** Downsampled series for runs × keys: raw points when few, else min/max/first/last/count buckets. */
  series: readProcedure
    .input(seriesInput)
    .query(async ({ ctx, input }) => querySeries(ctx.db.pool, await seriesReads(ctx, input))),

  /**
   * The same series in binary columns (libs/contracts/src/packed-series.ts): what the dashboard draws. No number is
   * formatted or parsed on the way.
   */
  seriesPacked: readProcedure
    .input(seriesInput)
    .query(async ({ ctx, input }) => querySeriesPacked(ctx.db.pool, await seriesReads(ctx, input))),

  /** The keys each run has logged, with their latest value. */
  keys: readProcedure
    .input(z.object({ runIds: z.array(id).min(1).max(LIMITS.runsPerSeriesQuery) }))
    .query(async ({ ctx, input }) => {
      await assertRuns(ctx.db, ctx.actor.teamId, input.runIds);
      const rows = await runMetricKeys(ctx.db, input.runIds);
      return rows.map((r) => ({ ...r, lastValue: encodeNumber(r.lastValue) }));
    }),
};
