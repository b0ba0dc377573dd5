/**
 * Paired comparisons of arms (methods) against a control over the same questions and seeds — what decides whether
 * a method beats another, where mean ± std over seeds cannot. Pure functions (no TensorFlow): `aft stats paired`,
 * the reproduce report and the dashboard use this one implementation. See docs/statistics.md.
 *
 * Per seed, only questions both arms answered are paired. Δ = accuracy(arm) − accuracy(control) = (b − c) / n, where
 * b counts questions only the arm got right and c those only the control got right; McNemar's exact test is on
 * (b, c). Over seeds: the mean Δ, a t-interval over the per-seed Δs, and a two-level bootstrap (resample seeds,
 * then questions within each seed, the same question ids for both arms).
 */
import { Rng } from '../rng';
import { mcnemarExact, tQuantile } from './distributions';

export interface CorrectnessRow {
  seed: number;
  arm: string;
  questionId: string;
  correct: boolean;
}

export interface SeedComparison {
  seed: number;
  /** Questions both arms answered on this seed. */
  n: number;
  delta: number;
  /** Only the arm right. */
  b: number;
  /** Only the control right. */
  c: number;
  /** McNemar's exact two-sided p. */
  p: number;
}

export interface ArmComparison {
  perSeed: SeedComparison[];
  meanDelta: number;
  /** t-interval over per-seed Δ; null with fewer than two seeds. */
  t95: [number, number] | null;
  bootstrap95: [number, number];
  /** Seeds where Δ > 0. */
  wins: number;
  seeds: number;
}

export interface PairedReport {
  control: string;
  arms: Record<string, ArmComparison>;
}

export interface PairedOptions {
  /** Bootstrap resamples (default 2,000). */
  resamples?: number;
  /** Seeds the bootstrap's generator, so a report is reproducible (default 1). */
  seed?: number;
  level?: number;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The t-interval of the mean of `xs` at `level` (two-sided); null when fewer than two values. */
export function tInterval(xs: readonly number[], level = 0.95): [number, number] | null {
  if (xs.length < 2) return null;
  const m = mean(xs);
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
  const half = tQuantile(1 - (1 - level) / 2, xs.length - 1) * (sd / Math.sqrt(xs.length));
  return [m - half, m + half];
}

/** One seed's paired outcomes: per question, 1 when the arm alone is right, −1 when the control alone is, else 0. */
type PairedSeed = { seed: number; d: Int8Array; n: number; b: number; c: number };

/** The p-quantile of sorted values (linear interpolation between order statistics). */
function quantile(sorted: Float64Array, p: number): number {
  const pos = p * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * Two-level paired bootstrap of the mean Δ: each resample draws seeds with replacement, then within each drawn
 * seed its questions with replacement; a question's draw carries both arms' answers, so the pairing is kept.
 */
export function pairedBootstrap(seeds: readonly PairedSeed[], opts: PairedOptions = {}): [number, number] {
  const resamples = opts.resamples ?? 2000;
  const level = opts.level ?? 0.95;
  const rng = new Rng(opts.seed ?? 1);
  const stats = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let total = 0;
    for (let s = 0; s < seeds.length; s++) {
      const { d, n } = seeds[rng.int(0, seeds.length - 1)]!;
      let sum = 0;
      for (let q = 0; q < n; q++) sum += d[rng.int(0, n - 1)]!;
      total += sum / n;
    }
    stats[r] = total / seeds.length;
  }
  stats.sort();
  return [quantile(stats, (1 - level) / 2), quantile(stats, 1 - (1 - level) / 2)];
}

/** Pairs one arm with the control seed by seed (seeds where they share no question are left out). */
function pairSeeds(arm: Map<number, Map<string, boolean>>, control: Map<number, Map<string, boolean>>): PairedSeed[] {
  const out: PairedSeed[] = [];
  for (const [seed, answers] of [...arm].sort((x, y) => x[0] - y[0])) {
    const ctl = control.get(seed);
    if (!ctl) continue;
    const d: number[] = [];
    let b = 0;
    let c = 0;
    for (const [q, right] of answers) {
      const other = ctl.get(q);
      if (other === undefined) continue;
      const v = right === other ? 0 : right ? 1 : -1;
      if (v > 0) b++;
      if (v < 0) c++;
      d.push(v);
    }
    if (d.length) out.push({ seed, d: Int8Array.from(d), n: d.length, b, c });
  }
  return out;
}

/** Every arm against `control`: per-seed Δ with McNemar, mean Δ, t-interval, paired bootstrap, wins. */
export function pairedComparison(
  rows: readonly CorrectnessRow[],
  control: string,
  opts: PairedOptions = {},
): PairedReport {
  const byArm = new Map<string, Map<number, Map<string, boolean>>>();
  for (const r of rows) {
    let seeds = byArm.get(r.arm);
    if (!seeds) byArm.set(r.arm, (seeds = new Map()));
    let qs = seeds.get(r.seed);
    if (!qs) seeds.set(r.seed, (qs = new Map()));
    qs.set(r.questionId, r.correct);
  }
  const ctl = byArm.get(control);
  if (!ctl)
    throw new RangeError(`control arm "${control}" has no rows (arms: ${[...byArm.keys()].join(', ') || 'none'})`);
  const arms: Record<string, ArmComparison> = {};
  for (const [arm, seeds] of [...byArm].sort((x, y) => x[0].localeCompare(y[0]))) {
    if (arm === control) continue;
    const paired = pairSeeds(seeds, ctl);
    if (!paired.length) continue;
    const perSeed = paired.map(({ seed, n, b, c }) => ({ seed, n, delta: (b - c) / n, b, c, p: mcnemarExact(b, c) }));
    const deltas = perSeed.map((s) => s.delta);
    arms[arm] = {
      perSeed,
      meanDelta: mean(deltas),
      t95: tInterval(deltas, opts.level),
      bootstrap95: pairedBootstrap(paired, opts),
      wins: deltas.filter((x) => x > 0).length,
      seeds: perSeed.length,
    };
  }
  return { control, arms };
}

/** An arm's result in words: "within noise" when the bootstrap interval contains 0. */
export function verdict(a: ArmComparison): 'better' | 'worse' | 'within noise' {
  const [lo, hi] = a.bootstrap95;
  if (lo > 0) return 'better';
  if (hi < 0) return 'worse';
  return 'within noise';
}
