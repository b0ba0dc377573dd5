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
import { sampleBinomial } from './binomial';
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

/** One seed's pairing of an arm with the control: n questions both answered, b only the arm right, c only the control. */
export interface PairedCounts {
  seed: number;
  n: number;
  b: number;
  c: number;
}

/**
 * One run's outcomes, compactly: question ids, and at the same index 1 when it answered right, 0 when wrong — what
 * the dashboard reads from the database, where thousands of questions × runs as row objects would be waste.
 */
export interface RunOutcomes {
  questionIds: readonly string[];
  correct: ArrayLike<number>;
}

/** A run's outcomes by question id: what another run is paired against. */
export function outcomeIndex(o: RunOutcomes): Map<string, boolean> {
  const m = new Map<string, boolean>();
  for (let i = 0; i < o.questionIds.length; i++) m.set(o.questionIds[i]!, o.correct[i] === 1);
  return m;
}

/** The paired counts of `arm` against `control` over the questions both answered. */
export function pairCounts(arm: RunOutcomes, control: ReadonlyMap<string, boolean>): Omit<PairedCounts, 'seed'> {
  let n = 0;
  let b = 0;
  let c = 0;
  for (let i = 0; i < arm.questionIds.length; i++) {
    const other = control.get(arm.questionIds[i]!);
    if (other === undefined) continue;
    n++;
    const right = arm.correct[i] === 1;
    if (right && !other) b++;
    else if (!right && other) c++;
  }
  return { n, b, c };
}

/** The p-quantile of sorted values (linear interpolation between order statistics). */
function quantile(sorted: Float64Array, p: number): number {
  const pos = p * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * Two-level paired bootstrap of the mean Δ: each resample draws seeds with replacement, then within each drawn
 * seed its n questions with replacement; a question's draw carries both arms' answers, so the pairing is kept.
 *
 * A drawn question adds +1 (only the arm right, probability b/n), −1 (only the control, c/n) or 0 to the seed's sum,
 * so the sum depends only on how many draws were discordant, D ~ Binomial(n, (b + c)/n), and how many of those went
 * the arm's way, W ~ Binomial(D, b/(b + c)): sum = 2W − D. Drawing D and W exactly (binomial.ts) is the same
 * resampling distribution as drawing n question indices, at O(√n) instead of O(n) a seed — what keeps a comparison
 * of 2,000-question seeds interactive.
 */
export function pairedBootstrap(
  seeds: readonly Omit<PairedCounts, 'seed'>[],
  opts: PairedOptions = {},
): [number, number] {
  const resamples = opts.resamples ?? 2000;
  const level = opts.level ?? 0.95;
  const rng = new Rng(opts.seed ?? 1);
  const stats = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let total = 0;
    for (let s = 0; s < seeds.length; s++) {
      const { n, b, c } = seeds[rng.int(0, seeds.length - 1)]!;
      const discordant = sampleBinomial(rng, n, (b + c) / n);
      const armWins = b + c ? sampleBinomial(rng, discordant, b / (b + c)) : 0;
      total += (2 * armWins - discordant) / n;
    }
    stats[r] = total / seeds.length;
  }
  stats.sort();
  return [quantile(stats, (1 - level) / 2), quantile(stats, 1 - (1 - level) / 2)];
}

/** Over an arm's paired seeds: per-seed Δ with McNemar, mean Δ, t-interval, paired bootstrap, wins. */
export function compareSeeds(paired: readonly PairedCounts[], opts: PairedOptions = {}): ArmComparison {
  if (!paired.length) throw new RangeError('no paired seed to compare');
  const perSeed = paired.map(({ seed, n, b, c }) => ({ seed, n, delta: (b - c) / n, b, c, p: mcnemarExact(b, c) }));
  const deltas = perSeed.map((s) => s.delta);
  return {
    perSeed,
    meanDelta: mean(deltas),
    t95: tInterval(deltas, opts.level),
    bootstrap95: pairedBootstrap(paired, opts),
    wins: deltas.filter((x) => x > 0).length,
    seeds: perSeed.length,
  };
}

/** Pairs one arm with the control seed by seed (seeds where they share no question are left out). */
function pairSeeds(arm: Map<number, Map<string, boolean>>, control: Map<number, Map<string, boolean>>): PairedCounts[] {
  const out: PairedCounts[] = [];
  for (const [seed, answers] of [...arm].sort((x, y) => x[0] - y[0])) {
    const ctl = control.get(seed);
    if (!ctl) continue;
    const counts = pairCounts({ questionIds: [...answers.keys()], correct: [...answers.values()].map(Number) }, ctl);
    if (counts.n) out.push({ seed, ...counts });
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
    if (paired.length) arms[arm] = compareSeeds(paired, opts);
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

/**
 * How far apart runs of one arm land by chance: Δ between every two of `runs` on the questions both answered, each
 * pair both ways (so the band is symmetric). lo and hi are the extremes; null with fewer than two runs. The control's
 * band is what a difference against it must clear to be more than which seed ran.
 */
export function noiseBand(runs: readonly RunOutcomes[]): { deltas: number[]; lo: number; hi: number } | null {
  const deltas: number[] = [];
  const indexes = runs.map(outcomeIndex);
  for (let i = 0; i < runs.length; i++) {
    for (let j = i + 1; j < runs.length; j++) {
      const { n, b, c } = pairCounts(runs[i]!, indexes[j]!);
      if (n) deltas.push((b - c) / n, (c - b) / n);
    }
  }
  if (!deltas.length) return null;
  return { deltas, lo: Math.min(...deltas), hi: Math.max(...deltas) };
}
