/**
 * From a training job's stored config to what aft-core trains with: the run's config parsed by the schema its launch
 * wrote it with, then resolved against aft-core's presets. A config either step refuses fails the run as a
 * PermanentError: retrying reads the same config.
 */
import { resolveAlignConfig, resolveVftConfig, type AlignConfig, type VftConfig } from '@aft/aft-core';
import type { z } from 'zod';
import type { AlignJobConfig, VftJobConfig } from '@aft/queue';
import { PermanentError } from './errors';

/** The run's stored config, read by the schema its launch wrote it with. */
export function jobConfig<T>(schema: z.ZodType<T>, stored: unknown): T {
  const r = schema.safeParse(stored);
  if (r.success) return r.data;
  throw new PermanentError(
    `bad run config: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
  );
}

function permanent<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new PermanentError(`${what}: ${(e as Error).message}`);
  }
}

export function vftConfigOf(p: VftJobConfig): VftConfig {
  return permanent('bad VFT config', () =>
    resolveVftConfig(p.preset, {
      ...p.overrides,
      seed: p.seed,
      ...(p.steps ? { steps: p.steps, 'optim.totalSteps': p.steps } : {}),
    }),
  );
}

export function alignConfigOf(p: AlignJobConfig): AlignConfig {
  return permanent('bad alignment config', () =>
    resolveAlignConfig(
      {
        method: p.method,
        constraint: p.constraint,
        beta: p.beta,
        dpoBeta: p.dpoBeta,
        wNll: p.wNll,
        feedback: p.feedback,
        steps: p.steps,
        seed: p.seed,
        lr: p.lr,
      },
      p.overrides,
    ),
  );
}
