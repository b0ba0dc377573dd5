/**
 * Sweep specs: a base config, axes to vary, grid or random search, a concurrency cap and a degradation policy.
 * `planSweep` expands a spec into VFT parents and the alignment runs that start from them: alignment runs whose
 * VFT settings (preset, seed, VFT overrides) agree share one parent, and runs that also agree on sampling
 * (k, temperature, questions) share one labelled sample set.
 */
import { z } from 'zod';
import {
  ALIGN_METHODS,
  alignJobConfig,
  CONSTRAINTS,
  DEGRADATION_POLICIES,
  FEEDBACK,
  PRESETS,
  vftJobConfig,
  type AlignJobConfig,
  type VftJobConfig,
} from './jobs';

/** The most runs one sweep may expand to. */
export const MAX_SWEEP_RUNS = 256;

const axis = <T extends z.ZodTypeAny>(name: string, item: T) =>
  z
    .array(item)
    .min(1, `axes.${name} is empty: give at least one value, or leave the axis out`)
    .max(64, `axes.${name} has more than 64 values`);

const posNumber = (what: string) => z.number().gt(0, `${what} must be > 0`);

const base = z
  .object({
    preset: z.enum(PRESETS).default('tiny'),
    method: z.enum(ALIGN_METHODS).default('aft'),
    constraint: z.enum(CONSTRAINTS).default('boundary'),
    beta: z.number().min(0, 'beta must be ≥ 0').max(100).default(1),
    dpoBeta: posNumber('dpoBeta').max(100).default(0.1),
    wNll: z.number().min(0, 'wNll must be ≥ 0').max(100).default(1),
    lr: posNumber('lr').max(1, 'lr is at most 1').default(3e-4),
    steps: z.number().int().min(1, 'steps must be at least 1').max(100_000).default(120),
    feedback: z.enum(FEEDBACK).default('binary'),
    seed: z.number().int().min(0).max(2 ** 31 - 1).default(1),
    k: z.number().int('k must be an integer').min(1, 'k must be at least 1').max(64).default(8),
    temperature: posNumber('temperature').max(2).default(0.8),
    questions: z.number().int().min(1).max(5000).default(500),
    vftSteps: z.number().int().min(1).max(1_000_000).optional(),
    vftOverrides: vftJobConfig.shape.overrides,
    alignOverrides: alignJobConfig.shape.overrides,
  })
  .strict();

const axisValues = {
  method: z.enum(ALIGN_METHODS, { message: `a method is one of ${ALIGN_METHODS.join(', ')}` }),
  constraint: z.enum(CONSTRAINTS, { message: `a constraint is one of ${CONSTRAINTS.join(', ')}` }),
  beta: z.number().min(0, 'beta must be ≥ 0').max(100, 'beta is at most 100'),
  lr: posNumber('lr').max(1, 'lr is at most 1'),
  k: z.number().int('k must be an integer').min(1, 'k must be at least 1').max(64, 'k is at most 64'),
  temperature: posNumber('temperature').max(2, 'temperature is at most 2'),
  seed: z.number().int('seed must be an integer').min(0, 'seed must be ≥ 0').max(2 ** 31 - 1),
  preset: z.enum(PRESETS, { message: `a preset is one of ${PRESETS.join(', ')}` }),
};
type AxisName = keyof typeof axisValues;
const AXIS_ORDER: AxisName[] = ['preset', 'seed', 'k', 'temperature', 'method', 'constraint', 'beta', 'lr'];

const axes = z
  .object({
    method: axis('method', axisValues.method),
    constraint: axis('constraint', axisValues.constraint),
    beta: axis('beta', axisValues.beta),
    lr: axis('lr', axisValues.lr),
    k: axis('k', axisValues.k),
    temperature: axis('temperature', axisValues.temperature),
    seed: axis('seed', axisValues.seed),
    preset: axis('preset', axisValues.preset),
  })
  .partial()
  .strict();

const point = z
  .object({
    method: axisValues.method,
    constraint: axisValues.constraint,
    beta: axisValues.beta,
    lr: axisValues.lr,
    k: axisValues.k,
    temperature: axisValues.temperature,
    seed: axisValues.seed,
    preset: axisValues.preset,
  })
  .partial()
  .strict();

export const sweepSpec = z
  .object({
    name: z.string().trim().min(1, 'name is required').max(200),
    project: z.string().trim().min(1, 'project is required').max(100),
    base: base.default(base.parse({})),
    axes: axes.default({}),
    /** Explicit points, each crossed with the axes' grid (e.g. hand-picked method × constraint pairs). */
    points: z.array(point).min(1, 'points is empty: give at least one, or leave it out').max(MAX_SWEEP_RUNS).optional(),
    search: z
      .discriminatedUnion('kind', [
        z.object({ kind: z.literal('grid') }).strict(),
        z
          .object({
            kind: z.literal('random'),
            count: z.number().int().min(1, 'search.count must be at least 1').max(MAX_SWEEP_RUNS, `search.count is at most ${MAX_SWEEP_RUNS}`),
            seed: z.number().int().min(0).default(0),
          })
          .strict(),
      ])
      .default({ kind: 'grid' }),
    /** Runs of this sweep training at once, at most. */
    maxConcurrent: z.number().int().min(1, 'maxConcurrent must be at least 1').max(64, 'maxConcurrent is at most 64').default(2),
    /** What a degraded alignment run gets: an event only (`flag`), or stopped as well (`stop`). */
    onDegradation: z.enum(DEGRADATION_POLICIES).default('flag'),
  })
  .strict()
  .superRefine((s, ctx) => {
    const grid = AXIS_ORDER.reduce((n, a) => n * (s.axes[a]?.length ?? 1), 1) * (s.points?.length ?? 1);
    if (s.search.kind === 'grid' && grid > MAX_SWEEP_RUNS) {
      ctx.addIssue({
        code: 'custom',
        path: ['axes'],
        message: `the grid has ${grid} runs; a sweep holds at most ${MAX_SWEEP_RUNS}: drop axis values, or use search {kind: "random", count}`,
      });
    }
    if (s.search.kind === 'random' && s.search.count > grid) {
      ctx.addIssue({ code: 'custom', path: ['search', 'count'], message: `search.count is ${s.search.count} but the axes give only ${grid} distinct runs` });
    }
  });
export type SweepSpec = z.infer<typeof sweepSpec>;
export type SweepSpecInput = z.input<typeof sweepSpec>;

export interface PlannedParent {
  key: string;
  name: string;
  config: VftJobConfig;
}
export interface PlannedRun {
  parentKey: string;
  name: string;
  config: AlignJobConfig;
}
export interface SweepPlan {
  parents: PlannedParent[];
  runs: PlannedRun[];
}

type Point = Required<z.infer<typeof point>>;

/** A small seeded PRNG (mulberry32): a random search is the same every time for the same seed. */
function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const fmt = (v: number) => String(Number(v.toPrecision(3)));

/**
 * Expands a parsed spec. Settings a method ignores are normalised away (β without a boundary constraint, the
 * constraint of plain fine-tuning), so the grid never trains the same run twice.
 */
export function planSweep(spec: SweepSpec): SweepPlan {
  const b = spec.base;
  let points: Point[] = (spec.points ?? [{}]).map((p) => ({
    method: b.method,
    constraint: b.constraint,
    beta: b.beta,
    lr: b.lr,
    k: b.k,
    temperature: b.temperature,
    seed: b.seed,
    preset: b.preset,
    ...p,
  }));
  for (const a of AXIS_ORDER) {
    const values = spec.axes[a];
    if (!values) continue;
    points = points.flatMap((p) => values.map((v) => ({ ...p, [a]: v })));
  }
  const seen = new Set<string>();
  points = points
    .map((p) => {
      const noRanking = p.method === 'vft' || p.method === 'rft';
      const constraint = noRanking ? 'none' : p.constraint;
      return { ...p, constraint, beta: constraint === 'boundary' ? p.beta : b.beta };
    })
    .filter((p) => {
      const key = JSON.stringify(AXIS_ORDER.map((a) => p[a]));
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  if (spec.search.kind === 'random') {
    const rand = mulberry32(spec.search.seed);
    for (let i = points.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [points[i], points[j]] = [points[j]!, points[i]!];
    }
    points = points.slice(0, spec.search.count);
  }
  const parents = new Map<string, PlannedParent>();
  const runs: PlannedRun[] = points.map((p) => {
    const vft: VftJobConfig = { preset: p.preset, seed: p.seed, steps: b.vftSteps, overrides: b.vftOverrides, sampling: [] };
    const key = JSON.stringify([vft.preset, vft.seed, vft.steps ?? null, vft.overrides]);
    let parent = parents.get(key);
    if (!parent) {
      parent = { key, name: `vft-${p.preset}-s${p.seed}`, config: vft };
      parents.set(key, parent);
    }
    const sampling = { k: p.k, temperature: p.temperature, questions: b.questions };
    if (!parent.config.sampling.some((s) => JSON.stringify(s) === JSON.stringify(sampling))) parent.config.sampling.push(sampling);
    const config = alignJobConfig.parse({
      method: p.method,
      constraint: p.constraint,
      beta: p.beta,
      dpoBeta: b.dpoBeta,
      wNll: b.wNll,
      lr: p.lr,
      steps: b.steps,
      feedback: b.feedback,
      seed: p.seed,
      sampling,
      onDegradation: spec.onDegradation,
      overrides: b.alignOverrides,
    });
    const varying = (a: AxisName) => (spec.axes[a]?.length ?? 0) > 1 || (spec.points?.some((q) => q[a] !== undefined) ?? false);
    const parts: (string | null)[] = [p.method, p.method === 'vft' || p.method === 'rft' ? null : p.constraint];
    if (p.constraint === 'boundary') parts.push(`b${fmt(p.beta)}`);
    if (varying('lr')) parts.push(`lr${fmt(p.lr)}`);
    if (varying('k')) parts.push(`k${p.k}`);
    if (varying('temperature')) parts.push(`t${fmt(p.temperature)}`);
    if (varying('preset')) parts.push(p.preset);
    parts.push(`s${p.seed}`);
    return { parentKey: key, name: parts.filter(Boolean).join('-'), config };
  });
  return { parents: [...parents.values()], runs };
}
