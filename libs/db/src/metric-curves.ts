/**
 * Realistic training curves, seeded: what the codec's tests and `bench:scale` measure bytes per point on
 * (docs/architecture.md, "The metric store"). Values are float32-rounded like every trainer's (tfjs and PyTorch log
 * float32 scalars) unless `float64` is set.
 */

export type CurveKind = 'loss' | 'accuracy' | 'lr' | 'constant' | 'grad-norm';

/** A small seeded PRNG (mulberry32), so a curve is the same on every machine. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface CurveOptions {
  seed: number;
  /** First step and count; steps go up by `stride` (default 1). */
  from: number;
  count: number;
  stride?: number;
  float64?: boolean;
  /** Share of points that are NaN (default 0). */
  nanRate?: number;
  /** Share of points that are a spike ×1000 (default 0). */
  spikeRate?: number;
  /** Wall time of step 0 (ms) and mean ms per step; each step jitters ±20%. */
  t0?: number;
  msPerStep?: number;
}

export function curve(kind: CurveKind, o: CurveOptions) {
  const r = rng(o.seed);
  const stride = o.stride ?? 1;
  const ms = o.msPerStep ?? 250;
  const steps: number[] = [];
  const values: number[] = [];
  const times: number[] = [];
  let t = (o.t0 ?? 1_700_000_000_000) + o.from * ms;
  for (let i = 0; i < o.count; i++) {
    const step = o.from + i * stride;
    const x = step / 10_000;
    let v: number;
    if (kind === 'loss') v = 0.3 + 2.5 * Math.exp(-4 * x) + 0.05 * (r() - 0.5);
    else if (kind === 'accuracy') v = Math.round(Math.min(1, 0.2 + 0.7 * (1 - Math.exp(-3 * x)) + 0.1 * r()) * 64) / 64;
    else if (kind === 'lr') v = step < 500 ? (3e-4 * step) / 500 : 3e-4 * Math.cos((Math.PI / 2) * Math.min(1, x));
    else if (kind === 'grad-norm') v = 1 + Math.abs(Math.log(r() + 1e-9));
    else v = 1;
    if (o.spikeRate && r() < o.spikeRate) v *= 1000;
    if (o.nanRate && r() < o.nanRate) v = NaN;
    steps.push(step);
    values.push(o.float64 ? v : Math.fround(v));
    t += Math.round(ms * stride * (0.8 + 0.4 * r()));
    times.push(t);
  }
  return { steps, values, times };
}
