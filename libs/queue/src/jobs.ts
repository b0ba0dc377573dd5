/**
 * Job payloads and results (docs/architecture.md, "The job contract"). A job names its run and carries the run's
 * token; it does not carry the run's config. The config has one home, the run's row in Postgres, written by the
 * launch after `vftJobConfig` / `alignJobConfig` below parsed it; the worker reads it back through `runs.get` with
 * the run token and parses it once more with the same schema, then the trainer resolves it against its presets
 * (an unknown key fails the run at once, unrecoverably).
 */
import { z } from 'zod';
import {
  ALIGN_CHOICE_DEFAULTS,
  ALIGN_METHODS,
  CONSTRAINTS,
  DEGRADATION_POLICIES,
  FEEDBACK,
  PRESETS,
  RESOURCE_BOUNDS,
  SETTING_BOUNDS,
  type NumberBound,
  type SweepStage,
} from '@aft/aft-core/spec';
import { ALIGN_OVERRIDE_BOUNDS, boundedOverrides, VFT_OVERRIDE_BOUNDS } from './overrides';

/** A number within its bound, each message naming the setting (e.g. `k must be at least 1`, `lr is at most 1`). */
export function boundedNumber(name: string, b: NumberBound) {
  let n = z.number();
  if (b.int) n = n.int(`${name} must be an integer`);
  n = b.above
    ? n.gt(b.min, `${name} must be > ${b.min}`)
    : n.min(b.min, `${name} must be ${b.min >= 1 ? 'at least' : '≥'} ${b.min}`);
  return n.max(b.max, `${name} is at most ${b.max.toLocaleString('en-US')}`);
}

const oneOf = <const T extends readonly [string, ...string[]]>(what: string, values: T) =>
  z.enum(values, { message: `a ${what} is one of ${values.join(', ')}` });

/**
 * The schema of each setting a launch chooses, from the training vocabulary (`@aft/aft-core/spec`: values, bounds);
 * the job configs below and the sweep spec (sweep.ts) add the spec's defaults.
 */
export const SETTINGS = {
  preset: oneOf('preset', PRESETS),
  method: oneOf('method', ALIGN_METHODS),
  constraint: oneOf('constraint', CONSTRAINTS),
  feedback: z.enum(FEEDBACK),
  onDegradation: z.enum(DEGRADATION_POLICIES),
  beta: boundedNumber('beta', SETTING_BOUNDS.beta),
  dpoBeta: boundedNumber('dpoBeta', SETTING_BOUNDS.dpoBeta),
  wNll: boundedNumber('wNll', SETTING_BOUNDS.wNll),
  lr: boundedNumber('lr', SETTING_BOUNDS.lr),
  steps: boundedNumber('steps', SETTING_BOUNDS.steps),
  /** A VFT job's `steps` (a sweep names it `vftSteps`). */
  vftSteps: boundedNumber('steps', SETTING_BOUNDS.vftSteps),
  seed: boundedNumber('seed', SETTING_BOUNDS.seed),
  k: boundedNumber('k', SETTING_BOUNDS.k),
  temperature: boundedNumber('temperature', SETTING_BOUNDS.temperature),
  questions: boundedNumber('questions', SETTING_BOUNDS.questions),
};

/**
 * What a job asks of its worker (docs/architecture.md, "GPU jobs"): `{ gpu: 1 }` puts it on the GPU queue, which only
 * workers started with `AFT_WORKER_GPUS` take; `{ gpu: 0 }`, the default, on the CPU queue.
 */
export const resourcesSpec = z.object({ gpu: boundedNumber('gpu', RESOURCE_BOUNDS.gpu).default(0) }).strict();
export type Resources = z.infer<typeof resourcesSpec>;
export type ResourcesInput = z.input<typeof resourcesSpec>;
export const CPU_RESOURCES: Resources = { gpu: 0 };
export const wantsGpu = (r: ResourcesInput | undefined): boolean => (r?.gpu ?? 0) > 0;

const stageResources = z.object({ gpu: boundedNumber('gpu', RESOURCE_BOUNDS.gpu).optional() }).strict();
/**
 * Where a sweep's jobs train: `gpu` for all of them, or per stage, the stage's own value winning —
 * `{ vft: { gpu: 1 } }` trains the VFT parents on a GPU and the alignment runs on CPUs.
 */
export const sweepResourcesSpec = z
  .object({
    gpu: stageResources.shape.gpu,
    vft: stageResources.optional(),
    align: stageResources.optional(),
  } satisfies Record<SweepStage | 'gpu', z.ZodType>)
  .strict();
export type SweepResources = z.infer<typeof sweepResourcesSpec>;

/** Each stage's resources, its own setting first, then the sweep's, then none. */
export function stageResourcesOf(r: SweepResources | undefined): Record<SweepStage, Resources> {
  const gpu = (s: SweepStage) => r?.[s]?.gpu ?? r?.gpu ?? 0;
  return { vft: { gpu: gpu('vft') }, align: { gpu: gpu('align') } };
}

const runId = z.string().min(1).max(64);
/** The job's own credential for its run (libs/db/src/run-tokens.ts): the worker logs with it, holding no team key. */
const runToken = z.string().startsWith('aftrun_', 'runToken must be a run token').max(100);
/**
 * Dotted trainer settings, e.g. `{ "optim.lr": 1e-3, "model.nLayer": 3 }`: known keys only, each within its
 * bounds (overrides.ts), so a launch cannot ask a worker for an unbounded model or run.
 */
const vftOverrides = boundedOverrides(VFT_OVERRIDE_BOUNDS, 'VFT');
const alignOverrides = boundedOverrides(ALIGN_OVERRIDE_BOUNDS, 'alignment');

export const samplingSpec = z.object({
  k: SETTINGS.k,
  temperature: SETTINGS.temperature,
  /** Training questions sampled and labelled. */
  questions: SETTINGS.questions,
});
export type SamplingSpec = z.infer<typeof samplingSpec>;

/** A sample set's name inside its VFT run's artifact folder: one per sampling spec. */
export const sampleSetName = (s: SamplingSpec) => `samples-k${s.k}-t${s.temperature}-q${s.questions}.jsonl`;

export const vftJobConfig = z.object({
  preset: SETTINGS.preset,
  seed: SETTINGS.seed,
  steps: SETTINGS.vftSteps.optional(),
  overrides: vftOverrides.default({}),
  /** Sample sets to draw and label after training (what this parent's alignment runs need). */
  sampling: z.array(samplingSpec).max(16).default([]),
});
export type VftJobConfig = z.infer<typeof vftJobConfig>;

export const alignJobConfig = z.object({
  method: SETTINGS.method,
  constraint: SETTINGS.constraint.default(ALIGN_CHOICE_DEFAULTS.constraint),
  beta: SETTINGS.beta.default(ALIGN_CHOICE_DEFAULTS.beta),
  dpoBeta: SETTINGS.dpoBeta.default(ALIGN_CHOICE_DEFAULTS.dpoBeta),
  wNll: SETTINGS.wNll.default(ALIGN_CHOICE_DEFAULTS.wNll),
  lr: SETTINGS.lr.default(ALIGN_CHOICE_DEFAULTS.lr),
  steps: SETTINGS.steps.default(ALIGN_CHOICE_DEFAULTS.steps),
  feedback: SETTINGS.feedback.default(ALIGN_CHOICE_DEFAULTS.feedback),
  seed: SETTINGS.seed,
  sampling: samplingSpec,
  onDegradation: SETTINGS.onDegradation.default(ALIGN_CHOICE_DEFAULTS.onDegradation),
  overrides: alignOverrides.default({}),
});
export type AlignJobConfig = z.infer<typeof alignJobConfig>;

export const trainJobPayload = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('vft'), runId, runToken, sweepId: runId.optional() }),
  z.object({
    kind: z.literal('align'),
    runId,
    runToken,
    sweepId: runId.optional(),
    parentRunId: runId,
    /** A fork: start from this run's last good checkpoint instead of the parent's weights. */
    initFromRunId: runId.optional(),
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
  runs: z.array(z.object({ runId, runToken })).max(1000),
  /** Where the alignment runs train (jobs queued before GPU jobs carry none: CPUs). */
  resources: resourcesSpec.default(CPU_RESOURCES),
});
export type ReleaseJobPayload = z.infer<typeof releaseJobPayload>;
export type ReleaseJobInput = z.input<typeof releaseJobPayload>;

/** What a finished training job returns (BullMQ keeps it as the job's return value). */
export const trainResult = z.object({
  runId,
  status: z.enum(['succeeded', 'canceled', 'skipped']),
  steps: z.number().int().min(0),
  summary: z.record(z.string(), z.union([z.number(), z.string(), z.boolean(), z.null()])),
});
export type TrainResult = z.infer<typeof trainResult>;
