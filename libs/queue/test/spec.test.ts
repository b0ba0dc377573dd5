/**
 * The job and sweep schemas take their vocabulary, defaults and bounds from `@aft/aft-core/spec`: every method,
 * constraint, preset, feedback kind and policy of the spec is accepted, what a launch leaves out parses to the spec's
 * default, and each bound holds at its edges. The checks loop over the spec, so a new method needs nothing here.
 */
import {
  ALIGN_CHOICE_DEFAULTS,
  ALIGN_METHODS,
  CONSTRAINTS,
  DEGRADATION_POLICIES,
  FEEDBACK,
  isRankingMethod,
  PRESETS,
  SETTING_BOUNDS,
  SWEEP_BASE_DEFAULTS,
  type NumberBound,
} from '@aft/aft-core/spec';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { alignJobConfig, planSweep, samplingSpec, sweepSpec, vftJobConfig } from '../src';

const sampling = { k: 4, temperature: 0.5, questions: 10 };
const align = (extra: Record<string, unknown> = {}) => ({ method: 'aft', seed: 1, sampling, ...extra });
const sweep = (extra: Record<string, unknown> = {}) => ({ name: 's', project: 'p', ...extra });

describe('the job schema agrees with the spec', () => {
  it.each(ALIGN_METHODS)('accepts %s and fills in the spec defaults', (method) => {
    const c = alignJobConfig.parse(align({ method }));
    const { method: _m, seed: _s, ...defaults } = ALIGN_CHOICE_DEFAULTS;
    expect(c).toMatchObject({ method, ...defaults });
  });

  it('accepts every constraint, feedback kind, policy and preset', () => {
    for (const constraint of CONSTRAINTS)
      expect(alignJobConfig.parse(align({ constraint })).constraint).toBe(constraint);
    for (const feedback of FEEDBACK) expect(alignJobConfig.parse(align({ feedback })).feedback).toBe(feedback);
    for (const onDegradation of DEGRADATION_POLICIES)
      expect(alignJobConfig.parse(align({ onDegradation })).onDegradation).toBe(onDegradation);
    for (const preset of PRESETS) expect(vftJobConfig.parse({ preset, seed: 1 }).preset).toBe(preset);
  });
});

describe('the sweep schema agrees with the spec', () => {
  it('fills in the spec sweep defaults', () => {
    const s = sweepSpec.parse(sweep());
    const { onDegradation, ...base } = SWEEP_BASE_DEFAULTS;
    expect(s.base).toMatchObject(base);
    expect(s.onDegradation).toBe(onDegradation);
  });

  it('plans every method: each ranking method with every constraint, each control once', () => {
    const plan = planSweep(
      sweepSpec.parse(sweep({ axes: { method: [...ALIGN_METHODS], constraint: [...CONSTRAINTS] } })),
    );
    for (const m of ALIGN_METHODS) {
      const constraints = plan.runs.filter((r) => r.config.method === m).map((r) => r.config.constraint);
      expect(constraints, m).toEqual(isRankingMethod(m) ? [...CONSTRAINTS] : ['none']);
    }
    expect(plan.runs.every((r) => alignJobConfig.safeParse(r.config).success)).toBe(true);
  });

  it('takes every preset on its axis', () => {
    const plan = planSweep(sweepSpec.parse(sweep({ axes: { preset: [...PRESETS] } })));
    expect(plan.parents.map((p) => p.config.preset)).toEqual([...PRESETS]);
  });
});

/** Where each bounded setting is parsed: the schema, and the input with the setting at `v`. */
const places: Record<keyof typeof SETTING_BOUNDS, [string, z.ZodType, (v: number) => unknown][]> = {
  beta: [['job', alignJobConfig, (v) => align({ beta: v })]],
  dpoBeta: [['job', alignJobConfig, (v) => align({ dpoBeta: v })]],
  wNll: [['job', alignJobConfig, (v) => align({ wNll: v })]],
  lr: [['job', alignJobConfig, (v) => align({ lr: v })]],
  steps: [['job', alignJobConfig, (v) => align({ steps: v })]],
  vftSteps: [['VFT job', vftJobConfig, (v) => ({ preset: 'tiny', seed: 1, steps: v })]],
  seed: [['job', alignJobConfig, (v) => align({ seed: v })]],
  k: [['sampling', samplingSpec, (v) => ({ ...sampling, k: v })]],
  temperature: [['sampling', samplingSpec, (v) => ({ ...sampling, temperature: v })]],
  questions: [['sampling', samplingSpec, (v) => ({ ...sampling, questions: v })]],
};

describe.each(Object.keys(SETTING_BOUNDS) as (keyof typeof SETTING_BOUNDS)[])('the bound of %s', (key) => {
  const b: NumberBound = SETTING_BOUNDS[key];
  // every bounded setting is also a field of a sweep's base
  const inSweep: (typeof places)[typeof key][number] = ['sweep base', sweepSpec, (v) => sweep({ base: { [key]: v } })];
  it.each([...places[key], inSweep])('holds in the %s schema', (_where, schema, input) => {
    const ok = (v: number) => schema.safeParse(input(v)).success;
    expect(ok(b.max)).toBe(true);
    expect(ok(b.max + 1)).toBe(false);
    expect(ok(b.min)).toBe(!b.above);
    expect(ok(b.min - 1)).toBe(false);
    if (b.int) expect(ok(b.min + 0.5)).toBe(false);
  });
});
