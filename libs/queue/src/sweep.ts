/**
 * Sweep specs: a base config, axes to vary, grid or random search, a concurrency cap, a degradation policy, and the
 * resources of each stage.
 * `planSweep` expands a spec into VFT parents and the alignment runs that start from them: alignment runs whose
 * VFT settings (preset, seed, VFT overrides) agree share one parent, and runs that also agree on sampling
 * (k, temperature, questions) share one labelled sample set.
 */
import { z } from 'zod';
import { isRankingMethod, SETTING_BOUNDS, SWEEP_BASE_DEFAULTS, type SweepStage } from '@aft/aft-core/spec';
import {
  alignJobConfig,
  boundedNumber,
  SETTINGS,
  stageResourcesOf,
  sweepResourcesSpec,
  vftJobConfig,
  type AlignJobConfig,
  type Resources,
  type VftJobConfig,
} from './jobs';

/** The most runs one sweep may expand to. */
export const MAX_SWEEP_RUNS = 256;
/** The largest grid a random search samples from (grid indices stay exact integers far below 2^53). */
export const MAX_RANDOM_GRID = 1e12;

const axis = <T extends z.ZodTypeAny>(name: string, item: T) =>
  z
    .array(item)
    .min(1, `axes.${name} is empty: give at least one value, or leave the axis out`)
    .max(64, `axes.${name} has more than 64 values`);

/** Settings left out take the spec's sweep defaults (`@aft/aft-core/spec`), those an alignment job shares its own. */
const base = z
  .object({
    preset: SETTINGS.preset.default(SWEEP_BASE_DEFAULTS.preset),
    method: SETTINGS.method.default(SWEEP_BASE_DEFAULTS.method),
    constraint: SETTINGS.constraint.default(SWEEP_BASE_DEFAULTS.constraint),
    ...alignJobConfig.pick({ beta: true, dpoBeta: true, wNll: true, lr: true, steps: true, feedback: true }).shape,
    seed: SETTINGS.seed.default(SWEEP_BASE_DEFAULTS.seed),
    k: SETTINGS.k.default(SWEEP_BASE_DEFAULTS.k),
    temperature: SETTINGS.temperature.default(SWEEP_BASE_DEFAULTS.temperature),
    questions: SETTINGS.questions.default(SWEEP_BASE_DEFAULTS.questions),
    vftSteps: boundedNumber('vftSteps', SETTING_BOUNDS.vftSteps).optional(),
    vftOverrides: vftJobConfig.shape.overrides,
    alignOverrides: alignJobConfig.shape.overrides,
  })
  .strict();

/** The settings a sweep may vary, on an axis or in an explicit point. */
const axisValues = z.object(SETTINGS).pick({
  method: true,
  constraint: true,
  beta: true,
  lr: true,
  k: true,
  temperature: true,
  seed: true,
  preset: true,
}).shape;
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

const point = z.object(axisValues).partial().strict();

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
            count: z
              .number()
              .int()
              .min(1, 'search.count must be at least 1')
              .max(MAX_SWEEP_RUNS, `search.count is at most ${MAX_SWEEP_RUNS}`),
            seed: z
              .number()
              .int()
              .min(0, 'search.seed must be ≥ 0')
              .max(2 ** 32 - 1, 'search.seed is at most 2^32 - 1')
              .default(0),
          })
          .strict(),
      ])
      .default({ kind: 'grid' }),
    /** Runs of this sweep training at once, at most. */
    maxConcurrent: z
      .number()
      .int()
      .min(1, 'maxConcurrent must be at least 1')
      .max(64, 'maxConcurrent is at most 64')
      .default(2),
    /** What a degraded alignment run gets: an event only (`flag`), or stopped as well (`stop`). */
    onDegradation: SETTINGS.onDegradation.default(SWEEP_BASE_DEFAULTS.onDegradation),
    /** Where its jobs train, e.g. `{ vft: { gpu: 1 } }`: the parents on a GPU, the alignment runs on CPUs (jobs.ts). */
    resources: sweepResourcesSpec.default({}),
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
    if (s.search.kind === 'random' && grid > MAX_RANDOM_GRID) {
      ctx.addIssue({
        code: 'custom',
        path: ['axes'],
        message:
          `the grid has ${grid.toExponential(2)} runs; a random search samples from at most ` +
          `${MAX_RANDOM_GRID.toExponential(0)}: drop axis values`,
      });
    }
    if (s.search.kind === 'random' && s.search.count > grid) {
      ctx.addIssue({
        code: 'custom',
        path: ['search', 'count'],
        message: `search.count is ${s.search.count} but the axes give only ${grid} distinct runs`,
      });
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
  /** Where each stage trains: the parents (`vft`) and the alignment runs (`align`). */
  resources: Record<SweepStage, Resources>;
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

/** Raw grid indices a random search draws at most, to find `count` distinct runs among indices that collapse. */
const MAX_RANDOM_DRAWS = 200_000;

/**
 * Up to `count` distinct runs of the grid (base points × axis values) in random order, without expanding it: a
 * grid index is decoded digit by digit (mixed radix, the last axis fastest, as the grid search orders it), and
 * indices are drawn without replacement by a Fisher–Yates shuffle that only records the positions it swapped,
 * so time and memory follow the draws, not the grid's size. Repeated axis values and base points that differ only
 * in axis-set fields are dropped first, so fewer indices collapse into one run.
 */
function sampleGrid(
  spec: SweepSpec,
  bases: readonly Point[],
  count: number,
  rand: () => number,
  distinct: (p: Point) => Point | null,
): Point[] {
  const axes = AXIS_ORDER.flatMap((a) => {
    const values = spec.axes[a] as readonly Point[AxisName][] | undefined;
    return values ? [{ a, values: [...new Set(values)] }] : [];
  });
  const free = AXIS_ORDER.filter((a) => !axes.some((x) => x.a === a));
  const byFree = new Map(bases.map((p) => [JSON.stringify(free.map((a) => p[a])), p]));
  const roots = [...byFree.values()];
  const size = axes.reduce((n, x) => n * x.values.length, roots.length);
  const decode = (index: number): Point => {
    let rest = index;
    const digits: number[] = [];
    for (let d = axes.length - 1; d >= 0; d--) {
      const n = axes[d]!.values.length;
      digits[d] = rest % n;
      rest = Math.floor(rest / n);
    }
    const p: Record<string, unknown> = { ...roots[rest]! };
    axes.forEach((x, d) => (p[x.a] = x.values[digits[d]!]));
    return p as Point;
  };
  // 53 random bits: the grid can hold far more than 2^32 indices
  const uniform = () => (Math.floor(rand() * 2 ** 21) * 2 ** 32 + Math.floor(rand() * 2 ** 32)) / 2 ** 53;
  const swapped = new Map<number, number>();
  const out: Point[] = [];
  const draws = Math.min(size, MAX_RANDOM_DRAWS);
  for (let i = 0; i < draws && out.length < count; i++) {
    const j = i + Math.floor(uniform() * (size - i));
    const pick = swapped.get(j) ?? j;
    swapped.set(j, swapped.get(i) ?? i);
    swapped.delete(i);
    const p = distinct(decode(pick));
    if (p) out.push(p);
  }
  return out;
}

/**
 * Expands a parsed spec. Settings a method ignores are normalised away (β without a boundary constraint, the
 * constraint of plain fine-tuning), so the grid never trains the same run twice.
 */
export function planSweep(spec: SweepSpec): SweepPlan {
  const b = spec.base;
  const bases: Point[] = (spec.points ?? [{}]).map((p) => ({
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
  const seen = new Set<string>();
  /** `p` as it trains (ignored settings normalised), or null when an earlier point already trains the same. */
  const distinct = (p: Point): Point | null => {
    const constraint = isRankingMethod(p.method) ? p.constraint : 'none';
    const q = { ...p, constraint, beta: constraint === 'boundary' ? p.beta : b.beta };
    const key = JSON.stringify(AXIS_ORDER.map((a) => q[a]));
    if (seen.has(key)) return null;
    seen.add(key);
    return q;
  };
  let points: Point[];
  if (spec.search.kind === 'random') {
    points = sampleGrid(spec, bases, spec.search.count, mulberry32(spec.search.seed), distinct);
  } else {
    // the product first: a grid over the cap is refused before anything is expanded
    const size = AXIS_ORDER.reduce((n, a) => n * (spec.axes[a]?.length ?? 1), bases.length);
    if (size > MAX_SWEEP_RUNS) throw new Error(`the grid has ${size} runs; a sweep holds at most ${MAX_SWEEP_RUNS}`);
    points = bases;
    for (const a of AXIS_ORDER) {
      const values = spec.axes[a];
      if (!values) continue;
      points = points.flatMap((p) => values.map((v) => ({ ...p, [a]: v })));
    }
    points = points.flatMap((p) => distinct(p) ?? []);
  }
  const parents = new Map<string, PlannedParent>();
  const runs: PlannedRun[] = points.map((p) => {
    const vft: VftJobConfig = {
      preset: p.preset,
      seed: p.seed,
      steps: b.vftSteps,
      overrides: b.vftOverrides,
      sampling: [],
    };
    const key = JSON.stringify([vft.preset, vft.seed, vft.steps ?? null, vft.overrides]);
    let parent = parents.get(key);
    if (!parent) {
      parent = { key, name: `vft-${p.preset}-s${p.seed}`, config: vft };
      parents.set(key, parent);
    }
    const sampling = { k: p.k, temperature: p.temperature, questions: b.questions };
    if (!parent.config.sampling.some((s) => JSON.stringify(s) === JSON.stringify(sampling)))
      parent.config.sampling.push(sampling);
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
    const varying = (a: AxisName) =>
      (spec.axes[a]?.length ?? 0) > 1 || (spec.points?.some((q) => q[a] !== undefined) ?? false);
    const parts: (string | null)[] = [p.method, isRankingMethod(p.method) ? p.constraint : null];
    if (p.constraint === 'boundary') parts.push(`b${fmt(p.beta)}`);
    if (varying('lr')) parts.push(`lr${fmt(p.lr)}`);
    if (varying('k')) parts.push(`k${p.k}`);
    if (varying('temperature')) parts.push(`t${fmt(p.temperature)}`);
    if (varying('preset')) parts.push(p.preset);
    parts.push(`s${p.seed}`);
    return { parentKey: key, name: parts.filter(Boolean).join('-'), config };
  });
  return { parents: [...parents.values()], runs, resources: stageResourcesOf(spec.resources) };
}
