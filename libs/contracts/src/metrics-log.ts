/**
 * metrics.log's input: one batch of points in one of three forms — objects (`points`, for hand-written clients),
 * JSON columns (`columns`) or binary columns (`packed`, what the SDK sends; libs/contracts/src/packed-points.ts).
 */
import { z } from 'zod';
import { LIMITS } from './limits';
import { packedPoints } from './packed-points';
import { id, metricColumns, metricPointInput } from './tracking';

export const metricsLogInput = z
  .object({
    runId: id,
    /** Points as objects: `{ key, step, value, time? }`. */
    points: z
      .array(metricPointInput)
      .min(1, 'a batch holds at least one point')
      .max(LIMITS.pointsPerBatch, `a batch holds at most ${LIMITS.pointsPerBatch} points; split it`)
      .optional(),
    /** Or the same points in columns. */
    columns: metricColumns.optional(),
    /** Or in binary columns (what the SDK sends). */
    packed: packedPoints.optional(),
  })
  .refine((v) => [v.points, v.columns, v.packed].filter((f) => f !== undefined).length === 1, {
    message: 'give the points in one form: `points` (objects), `columns` or `packed`, not several and not none',
  });
export type MetricsLogInput = z.infer<typeof metricsLogInput>;
