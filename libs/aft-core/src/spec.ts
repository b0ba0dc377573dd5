/**
 * The training vocabulary, in one place: the alignment methods (ranking losses and fine-tuning controls), the
 * constraints, feedback kinds, presets and degradation policies, and the defaults and bounds of what a launch may
 * choose. The trainer, the CLI, the queue's zod schemas (libs/queue) and the dashboard (apps/web) all derive from
 * this file; libs/aft-core/test/spec.test.ts, libs/queue/test/spec.test.ts and apps/web/test/method-vocabulary.test.ts
 * check that they do. It imports nothing, so `@aft/aft-core/spec` is the one door into libs/aft-core that layers
 * without TensorFlow may use (docs/architecture.md, "Layers"; eslint.config.js allows exactly this entry).
 */

/** The ranking losses: each has its loss function in losses/registry.ts and takes a constraint. */
export const RANKING_METHODS = ['aft', 'dpo', 'rrhf', 'pro'] as const;
export type RankingMethod = (typeof RANKING_METHODS)[number];

/**
 * The fine-tuning controls: `vft` continues plain fine-tuning of the parent; `rft` is rejection-sampling fine-tuning
 * (NLL on each question's distinct correct samples). Neither has a ranking loss, so neither takes a constraint.
 */
export const CONTROL_METHODS = ['vft', 'rft'] as const;
export type ControlMethod = (typeof CONTROL_METHODS)[number];

/** Every alignment method, in the order tables and forms list them: the controls first, then the ranking losses. */
export const ALIGN_METHODS = [...CONTROL_METHODS, ...RANKING_METHODS] as const;
export type AlignMethod = (typeof ALIGN_METHODS)[number];

/** How the dashboard names each method (the VFT parent itself, the baseline, is not an alignment method). */
export const METHOD_LABELS: Readonly<Record<AlignMethod, string>> = {
  vft: 'VFT (continued)',
  rft: 'RFT',
  aft: 'AFT',
  dpo: 'DPO',
  rrhf: 'RRHF',
  pro: 'PRO',
};

export const isRankingMethod = (m: string): m is RankingMethod => (RANKING_METHODS as readonly string[]).includes(m);
export const isControlMethod = (m: string): m is ControlMethod => (CONTROL_METHODS as readonly string[]).includes(m);

/** What a ranking loss does to worse candidates (docs/architecture.md, "Scores and losses"), in display order. */
export const CONSTRAINTS = ['none', 'detach', 'boundary'] as const;
export type ConstraintName = (typeof CONSTRAINTS)[number];

/** `binary`: correct vs incorrect; `ranked`: by the step checker (more correct steps rank higher). */
export const FEEDBACK = ['binary', 'ranked'] as const;
export type FeedbackKind = (typeof FEEDBACK)[number];

/** Model and data presets of a VFT parent (train/vft.ts, model/config.ts). */
export const PRESETS = ['tiny', 'small', 'medium'] as const;
export type PresetName = (typeof PRESETS)[number];
export const DEFAULT_PRESET: PresetName = 'tiny';

/** What a degraded alignment run gets: an event only (`flag`), or stopped as well (`stop`). */
export const DEGRADATION_POLICIES = ['flag', 'stop'] as const;
export type DegradationPolicy = (typeof DEGRADATION_POLICIES)[number];

/** A setting's allowed range. */
export interface NumberBound {
  min: number;
  max: number;
  /** Whole numbers only. */
  int?: boolean;
  /** `min` itself is excluded (a rate or a temperature must be > 0). */
  above?: boolean;
}

/**
 * The bounds of what a launch may choose: they keep one job to what a worker can train (docs/architecture.md,
 * "The job contract"). The trainer itself accepts any β ≥ 0 and dpoBeta > 0 (losses/registry.ts, checkSpec).
 */
export const SETTING_BOUNDS = {
  beta: { min: 0, max: 100 },
  dpoBeta: { min: 0, max: 100, above: true },
  wNll: { min: 0, max: 100 },
  lr: { min: 0, max: 1, above: true },
  /** Alignment steps. */
  steps: { min: 1, max: 100_000, int: true },
  /** VFT steps (a parent trains far longer than an alignment run). */
  vftSteps: { min: 1, max: 1_000_000, int: true },
  seed: { min: 0, max: 2 ** 31 - 1, int: true },
  /** Samples drawn per training question. */
  k: { min: 1, max: 64, int: true },
  temperature: { min: 0, max: 2, above: true },
  /** Training questions sampled and labelled. */
  questions: { min: 1, max: 5000, int: true },
} as const satisfies Record<string, NumberBound>;

/**
 * What a job may ask of its worker (docs/architecture.md, "GPU jobs"): `gpu` 0 or 1, since a job trains on one device
 * (the backend holds a single adapter). A sweep asks per stage: its VFT parents (`vft`), its alignment runs (`align`).
 */
export const RESOURCE_BOUNDS = { gpu: { min: 0, max: 1, int: true } } as const satisfies Record<string, NumberBound>;
export const SWEEP_STAGES = ['vft', 'align'] as const;
export type SweepStage = (typeof SWEEP_STAGES)[number];

/** The choices of an alignment run (the trainer's AlignChoice, the job's config). */
export interface AlignChoiceDefaults {
  method: AlignMethod;
  constraint: ConstraintName;
  /** Boundary margin β. */
  beta: number;
  /** DPO's β (the implicit reward's scale). */
  dpoBeta: number;
  /** Weight of the NLL term. */
  wNll: number;
  lr: number;
  steps: number;
  feedback: FeedbackKind;
  seed: number;
  onDegradation: DegradationPolicy;
}

/** What an alignment run trains with where its launch leaves a choice out (trainer, job schema and CLI alike). */
export const ALIGN_CHOICE_DEFAULTS: Readonly<AlignChoiceDefaults> = {
  method: 'aft',
  constraint: 'none',
  // the boundary's margin, on the scale the method's bound acts on: per-character mean log-likelihoods for AFT, RRHF
  // and PRO, β_dpo × the summed log-ratio for DPO. 0.1 keeps the bound active on most steps of every method (the
  // reproduce grid measured 63–86 %); at 1 negatives reached it on 0–6 % of steps for AFT, RRHF and PRO (docs/statistics.md)
  beta: 0.1,
  dpoBeta: 0.1,
  wNll: 1,
  lr: 3e-4,
  steps: 120,
  feedback: 'binary',
  seed: 1,
  onDegradation: 'flag',
};

/** How a VFT parent's training questions are sampled and labelled where a sweep or `aft sample` leaves it out. */
export const SAMPLING_DEFAULTS: Readonly<{ k: number; temperature: number; questions: number }> = {
  k: 8,
  temperature: 0.8,
  questions: 500,
};

/**
 * A sweep's base where its spec leaves a field out: the alignment defaults on the default preset, with the boundary
 * constraint, the paper's method.
 */
export const SWEEP_BASE_DEFAULTS: Readonly<AlignChoiceDefaults & typeof SAMPLING_DEFAULTS & { preset: PresetName }> = {
  ...ALIGN_CHOICE_DEFAULTS,
  constraint: 'boundary',
  preset: DEFAULT_PRESET,
  ...SAMPLING_DEFAULTS,
};
