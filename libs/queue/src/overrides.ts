/**
 * The trainer settings a launch may override, each with its bounds. The keys are those of libs/aft-core's
 * resolveVftConfig and resolveAlignConfig (train/vft.ts, train/run-align.ts); the table lives here, not there,
 * because the web validates launches and must not load TensorFlow. Bounds keep one job to what a worker can train
 * (an unbounded `model.dModel` or `steps` would hold a worker, or exhaust its memory, for as long as it runs).
 * Settings a launch already has a field for (seed, method, β, lr of an alignment run …) are not overridable: the
 * field wins in the trainer, so an override of them would be silently ignored.
 */
import { z } from 'zod';
import { SETTING_BOUNDS, type NumberBound as Bound } from '@aft/aft-core/spec';

const int = (min: number, max: number): Bound => ({ min, max, int: true });
const real = (min: number, max: number, above = false): Bound => ({ min, max, above });

const MAX_STEPS = SETTING_BOUNDS.vftSteps.max;

const optim: Record<string, Bound> = {
  'optim.lr': SETTING_BOUNDS.lr,
  'optim.beta1': real(0, 0.999_999),
  'optim.beta2': real(0, 0.999_999),
  'optim.eps': real(0, 1, true),
  'optim.weightDecay': real(0, 10),
  'optim.clipNorm': real(0, 1000),
  'optim.warmupSteps': int(0, MAX_STEPS),
  'optim.totalSteps': int(1, MAX_STEPS),
  'optim.minLrRatio': real(0, 1),
};

const evaluation: Record<string, Bound> = {
  'eval.assessQuestions': int(0, 5000),
  'eval.k': SETTING_BOUNDS.k,
  'eval.temperature': SETTING_BOUNDS.temperature,
  'eval.topK': int(0, 1000),
  'eval.maxNewTokens': int(1, 1024),
  'eval.batchSize': int(1, 1024),
};

/** resolveVftConfig's keys (seed and preset have their own fields). */
export const VFT_OVERRIDE_BOUNDS: Readonly<Record<string, Bound>> = {
  steps: SETTING_BOUNDS.vftSteps,
  batchSize: int(1, 512),
  accumulate: int(1, 64),
  evalEvery: int(1, MAX_STEPS),
  evalQuestions: int(1, 10_000),
  checkpointEvery: int(1, MAX_STEPS),
  // the largest model: 24 × 1024² × 12 ≈ 300M weights, already far past what a CPU worker trains in a day
  'model.blockSize': int(8, 1024),
  'model.nLayer': int(1, 24),
  'model.nHead': int(1, 32),
  'model.dModel': int(8, 1024),
  'model.initStd': real(0, 1, true),
  ...optim,
  'data.seed': SETTING_BOUNDS.seed,
  'data.maxAddend': int(1, 1000),
  'data.maxFactor': int(1, 1000),
  'data.train': int(1, 200_000),
  'data.val': int(1, 10_000),
  'data.test': int(1, 10_000),
  ...evaluation,
};

/** resolveAlignConfig's keys (steps, seed, method and the loss settings have their own fields). */
export const ALIGN_OVERRIDE_BOUNDS: Readonly<Record<string, Bound>> = {
  evalEvery: int(1, MAX_STEPS),
  evalQuestions: int(1, 10_000),
  checkpointEvery: int(1, MAX_STEPS),
  evalAssessQuestions: int(0, 5000),
  'spec.groupsPerStep': int(1, 256),
  'spec.maxCandidates': int(1, 64),
  controlRefsPerGroup: int(1, 16),
  ...optim,
  ...evaluation,
  // a tiny pplRatio flags every evaluation: how tests force a degradation (docs/statistics.md)
  'degradation.pplRatio': real(0, 100, true),
  'degradation.alpha': real(0, 1, true),
  // floors of the paired tests (libs/aft-core/src/degradation.ts): ≤ 0 leaves the decision to significance alone
  // (negative values stay valid: jobs queued before the paired detector carry them)
  'degradation.malformedRate': real(-1, 1),
  'degradation.repetitionRate': real(-1, 1),
  'degradation.accuracyDrop': real(-1, 1),
};

export const MAX_OVERRIDES = 50;

function problem(key: string, b: Bound, v: number): string | null {
  if (b.int && !Number.isInteger(v)) return `${key} must be an integer, got ${v}`;
  if (b.above ? v <= b.min : v < b.min) return `${key} must be ${b.above ? '>' : '≥'} ${b.min}, got ${v}`;
  if (v > b.max) return `${key} is at most ${b.max.toLocaleString('en-US')}, got ${v}`;
  return null;
}

/** Overrides checked against `table`: a known key and a number within its bounds, each issue at its key. */
export function boundedOverrides(table: Readonly<Record<string, Bound>>, what: string) {
  return z
    .record(z.string(), z.unknown())
    .superRefine((o, ctx) => {
      const keys = Object.keys(o);
      if (keys.length > MAX_OVERRIDES) {
        ctx.addIssue({ code: 'custom', message: `at most ${MAX_OVERRIDES} overrides, got ${keys.length}` });
        return;
      }
      for (const k of keys) {
        const b = table[k];
        const v = o[k];
        if (!b) {
          const valid = Object.keys(table).join(', ');
          ctx.addIssue({
            code: 'custom',
            path: [k],
            message: `${k} is not a ${what} setting that can be overridden; valid keys: ${valid}`,
          });
        } else if (typeof v !== 'number' || !Number.isFinite(v)) {
          ctx.addIssue({ code: 'custom', path: [k], message: `${k} must be a finite number` });
        } else {
          const p = problem(k, b, v);
          if (p) ctx.addIssue({ code: 'custom', path: [k], message: p });
        }
      }
    })
    .transform((o) => o as Record<string, number>);
}
