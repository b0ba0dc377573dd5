/**
 * Chart maths, pure and tested: wire series → columns uPlot draws, smoothing, log-scale safety.
 * Non-finite values never vanish silently: they become gaps in the line and are counted for the chart's warning.
 */

import type { WireSeries } from '@aft/api';

export type { WireSeries };
type Wire = number | 'NaN' | 'Infinity' | '-Infinity' | null;

export interface ChartColumns {
  x: number[];
  /** The line: raw values, or each bucket's last value. */
  y: (number | null)[];
  /** Bucket extremes (the band that keeps spikes); null for raw series. */
  lo: (number | null)[] | null;
  hi: (number | null)[] | null;
  /** Points that are NaN or ±Infinity (drawn as gaps). */
  nonFinite: number;
  /** Points the columns stand for. */
  points: number;
}

const finite = (v: Wire): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * x as minutes of wall-clock time since `t0` (ms), from each point's (or bucket's last point's) time. Points without
 * a time are dropped (an old server's buckets).
 */
export function withWallTime(c: ChartColumns, s: WireSeries, t0: number): ChartColumns {
  const times = s.times;
  if (!times || times.length !== c.x.length) return { ...c, x: [], y: [], lo: c.lo ? [] : null, hi: c.hi ? [] : null };
  return { ...c, x: times.map((t) => (t - t0) / 60_000) };
}

/**
 * x re-expressed through another series of the same run, e.g. steps → cumulative training tokens (`train/tokens`):
 * each x is placed by linear interpolation between the mapping's points; xs outside its range are dropped.
 */
export function remapX(c: ChartColumns, mapping: ChartColumns): ChartColumns {
  const mx: number[] = [];
  const my: number[] = [];
  mapping.x.forEach((x, i) => {
    const y = mapping.y[i];
    if (typeof y === 'number') {
      mx.push(x);
      my.push(y);
    }
  });
  const keep: number[] = [];
  const xs: number[] = [];
  let j = 0;
  c.x.forEach((x, i) => {
    if (!mx.length || x < mx[0]! || x > mx[mx.length - 1]!) return;
    while (j < mx.length - 1 && mx[j + 1]! < x) j++;
    const x0 = mx[j]!;
    const x1 = mx[Math.min(j + 1, mx.length - 1)]!;
    const t = x1 === x0 ? 0 : (x - x0) / (x1 - x0);
    xs.push(my[j]! + t * (my[Math.min(j + 1, my.length - 1)]! - my[j]!));
    keep.push(i);
  });
  const pick = <T>(a: T[] | null) => (a ? keep.map((i) => a[i]!) : null);
  return { ...c, x: xs, y: pick(c.y)!, lo: pick(c.lo), hi: pick(c.hi) };
}

export function toColumns(s: WireSeries): ChartColumns {
  if (s.mode === 'raw') {
    const y = s.values.map(finite);
    return { x: s.steps, y, lo: null, hi: null, nonFinite: y.filter((v) => v === null).length, points: y.length };
  }
  let nonFinite = 0;
  for (let i = 0; i < s.steps.length; i++) {
    nonFinite += s.nan[i] ?? 0;
    if (s.min[i] === '-Infinity') nonFinite++;
    if (s.max[i] === 'Infinity') nonFinite++;
  }
  return {
    // a bucket is drawn at its centre
    x: s.steps.map((st) => st + (s.width - 1) / 2),
    y: s.last.map(finite),
    lo: s.min.map(finite),
    hi: s.max.map(finite),
    nonFinite,
    points: s.count.reduce((a, b) => a + b, 0),
  };
}

/**
 * Exponential moving average with TensorBoard's debiasing (the first points are not dragged towards 0).
 * `weight` in [0, 1): 0 is no smoothing. Gaps (null) stay gaps and do not reset the average.
 */
export function smooth(y: readonly (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) return [...y];
  const w = Math.min(weight, 0.999);
  let last = 0;
  let n = 0;
  return y.map((v) => {
    if (v === null) return null;
    last = last * w + (1 - w) * v;
    n++;
    return last / (1 - w ** n);
  });
}

/** Values a log scale cannot draw (≤ 0) become gaps. */
export function logSafe(y: readonly (number | null)[]): (number | null)[] {
  return y.map((v) => (v !== null && v > 0 ? v : null));
}

/** Merges a tail fetched after `fromStep` into a raw series (live updates append instead of refetching). */
export function appendRaw(
  a: Extract<WireSeries, { mode: 'raw' }>,
  tail: Extract<WireSeries, { mode: 'raw' }>,
): Extract<WireSeries, { mode: 'raw' }> {
  const lastStep = a.steps.length ? a.steps[a.steps.length - 1]! : -1;
  const keep = tail.steps.findIndex((s) => s > lastStep);
  if (keep < 0) return a;
  return {
    ...a,
    steps: [...a.steps, ...tail.steps.slice(keep)],
    values: [...a.values, ...tail.values.slice(keep)],
    times: [...a.times, ...tail.times.slice(keep)],
  };
}
