/**
 * Job payloads and progress messages, parsed on both sides: the producer (web) before it enqueues, the worker
 * before it trains. The trainer validates the config once more against its own presets (an unknown key fails
 * the job at once, unrecoverably).
 */
import { z } from 'zod';
import { ALIGN_OVERRIDE_BOUNDS, boundedOverrides, VFT_OVERRIDE_BOUNDS } from './overrides';

export const PRESETS = ['tiny', 'small'] as const;
/** `vft` as an alignment method is continued fine-tuning (the control); `rft` is rejection-sampling fine-tuning. */
export const ALIGN_METHODS = ['vft', 'rft', 'aft', 'dpo', 'rrhf', 'pro'] as const;
export const CONSTRAINTS = ['none', 'detach', 'boundary'] as const;
export const FEEDBACK = ['binary', 'ranked'] as const;
export const DEGRADATION_POLICIES = ['flag', 'stop'] as const;

const runId = z.string().min(1).max(64);
/** The job's own credential for its run (libs/db/src/run-tokens.ts): the worker logs with it, holding no team key. */
const runToken = z.string().startsWith('aftrun_', 'runToken must be a run token').max(100);
const seed = z
  .number()
  .int('seed must be an integer')
  .min(0, 'seed must be ≥ 0')
  .max(2 ** 31 - 1);
/**
 * Dotted trainer settings, e.g. `{ "optim.lr": 1e-3, "model.nLayer": 3 }`: known keys only, each within its
 * bounds (overrides.ts), so a launch cannot ask a worker for an unbounded model or run.
 */
const vftOverrides = boundedOverrides(VFT_OVERRIDE_BOUNDS, 'VFT');
const alignOverrides = boundedOverrides(ALIGN_OVERRIDE_BOUNDS, 'alignment');

export const samplingSpec = z.object({
  k: z.number().int('k must be an integer').min(1, 'k must be at least 1').max(64, 'k is at most 64'),
  temperature: z.number().gt(0, 'temperature must be > 0').max(2, 'temperature is at most 2'),
  /** Training questions sampled and labelled. */
  questions: z.number().int().min(1, 'questions must be at least 1').max(5000, 'questions is at most 5000'),
});
export type SamplingSpec = z.infer<typeof samplingSpec>;

/** A sample set's name inside its VFT run's artifact folder: one per sampling spec. */
export const sampleSetName = (s: SamplingSpec) => `samples-k${s.k}-t${s.temperature}-q${s.questions}.jsonl`;

export const vftJobConfig = z.object({
  preset: z.enum(PRESETS),
  seed,
  steps: z.number().int().min(1, 'steps must be at least 1').max(1_000_000, 'steps is at most 1,000,000').optional(),
  overrides: vftOverrides.default({}),
  /** Sample sets to draw and label after training (what this parent's alignment runs need). */
  sampling: z.array(samplingSpec).max(16).default([]),
});
export type VftJobConfig = z.infer<typeof vftJobConfig>;

export const alignJobConfig = z.object({
  method: z.enum(ALIGN_METHODS),
  constraint: z.enum(CONSTRAINTS).default('none'),
  beta: z.number().min(0, 'beta must be ≥ 0').max(100).default(1),
  dpoBeta: z.number().gt(0, 'dpoBeta must be > 0').max(100).default(0.1),
  wNll: z.number().min(0, 'wNll must be ≥ 0').max(100).default(1),
  lr: z.number().gt(0, 'lr must be > 0').max(1, 'lr is at most 1').default(3e-4),
  steps: z.number().int().min(1, 'steps must be at least 1').max(100_000, 'steps is at most 100,000').default(120),
  feedback: z.enum(FEEDBACK).default('binary'),
  seed,
  sampling: samplingSpec,
  onDegradation: z.enum(DEGRADATION_POLICIES).default('flag'),
  overrides: alignOverrides.default({}),
});
export type AlignJobConfig = z.infer<typeof alignJobConfig>;

export const trainJobPayload = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('vft'), runId, runToken, sweepId: runId.optional(), config: vftJobConfig }),
  z.object({
    kind: z.literal('align'),
    runId,
    runToken,
    sweepId: runId.optional(),
    parentRunId: runId,
    /** A fork: start from this run's last good checkpoint instead of the parent's weights. */
    initFromRunId: runId.optional(),
    config: alignJobConfig,
  }),
]);
export type TrainJobPayload = z.infer<typeof trainJobPayload>;
export type TrainJobInput = z.input<typeof trainJobPayload>;

/**
 * The release job of a sweep's VFT parent: a parent in a BullMQ flow whose child is the VFT job, so it runs once
 * the parent has trained and sampled (or failed), and then enqueues the alignment runs that wait for it.
 */
export const releaseJobPayload = z.object({
  sweepId: runId,
  parentRunId: runId,
  /** Alignment runs started side by side at most (the sweep's cap shared among its parents). */
  lanes: z.number().int().min(1).max(64),
  runs: z.array(z.object({ runId, runToken, config: alignJobConfig })).max(1000),
});
export type ReleaseJobPayload = z.infer<typeof releaseJobPayload>;

/** What a finished training job returns (BullMQ keeps it as the job's return value). */
export const trainResult = z.object({
  runId,
  status: z.enum(['succeeded', 'canceled', 'skipped']),
  steps: z.number().int().min(0),
  summary: z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.null()])),
});
export type TrainResult = z.infer<typeof trainResult>;
