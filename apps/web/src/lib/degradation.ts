/**
 * The details of a `degradation-detected` event, as the worker records them (apps/worker/src/reporter.ts, from
 * libs/aft-core's degradation detector). They arrive as stored JSON, so the case study reads them through this
 * schema rather than trusting their shape.
 */
import { z } from 'zod';

/** One greedy generation the detector kept (EvalReport.examples). */
const example = z.object({ id: z.string(), question: z.string(), output: z.string(), correct: z.boolean() });
export type Example = z.infer<typeof example>;

/** A number, or "NaN"/"Infinity"/"-Infinity" as the SDK encodes a non-finite one. */
const reading = z.union([z.number(), z.string()]);

export const degradationDetails = z.object({
  evidence: z.array(
    z.object({
      signal: z.string(),
      value: reading,
      limit: reading,
      parent: reading,
      // the paired tests' counts and p (libs/aft-core/src/degradation.ts); absent for the perplexity ratio
      worse: z.number().optional(),
      better: z.number().optional(),
      p: reading.optional(),
      alphaSpent: reading.optional(),
    }),
  ),
  before: z.array(example),
  after: z.array(example),
  parent: z.array(example).optional(),
  policy: z.string().optional(),
});
export type Degradation = z.infer<typeof degradationDetails>;
