/**
 * An exact Binomial(n, p) sampler, what lets the paired bootstrap draw a seed's resampled sum from its counts instead
 * of drawing each of its questions (paired.ts, pairedBootstrap).
 */
import type { Rng } from '../rng';
import { logChoose } from './distributions';

/** P(X = mode) for X ~ Binomial(n, p), 0 < p < 1, with the mode ⌊(n + 1)p⌋ capped at n. */
function atMode(n: number, p: number): { mode: number; pmf: number } {
  const mode = Math.min(n, Math.floor((n + 1) * p));
  return { mode, pmf: Math.exp(logChoose(n, mode) + mode * Math.log(p) + (n - mode) * Math.log1p(-p)) };
}

/**
 * Draws X ~ Binomial(n, p) by inversion, visiting values outward from the mode (m, m + 1, m − 1, m + 2, …) and
 * taking each one's probability from a single uniform. Any fixed order of the values gives the exact distribution;
 * this one needs about 1.6 standard deviations of steps on average, so a draw costs O(√(np(1 − p))) — against O(n) for
 * n Bernoulli draws. Probabilities are carried by the ratio P(k + 1) / P(k) = (n − k) / (k + 1) · p / (1 − p), so
 * there is one exp per draw. The ~1e-15 of mass lost to rounding goes to the mode.
 */
export function sampleBinomial(rng: Rng, n: number, p: number): number {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`n must be a non-negative integer, got ${n}`);
  if (!(p >= 0 && p <= 1)) throw new RangeError(`p must be in [0, 1], got ${p}`);
  if (n === 0 || p === 0) return 0;
  if (p === 1) return n;
  const { mode, pmf } = atMode(n, p);
  const odds = p / (1 - p);
  let u = rng.next() - pmf;
  if (u < 0) return mode;
  let lo = mode;
  let hi = mode;
  let pLo = pmf;
  let pHi = pmf;
  while (lo > 0 || hi < n) {
    if (hi < n) {
      pHi *= ((n - hi) / (hi + 1)) * odds;
      hi++;
      u -= pHi;
      if (u < 0) return hi;
    }
    if (lo > 0) {
      pLo *= lo / (n - lo + 1) / odds;
      lo--;
      u -= pLo;
      if (u < 0) return lo;
    }
  }
  return mode;
}
