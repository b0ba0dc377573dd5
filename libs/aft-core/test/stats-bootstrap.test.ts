/**
 * The paired bootstrap draws each seed's resampled sum from its counts (binomial.ts): held here to the exact
 * binomial distribution and to the per-question resampling it replaces. Also the noise band and the arms.
 */
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/rng';
import {
  armOf,
  compareArms,
  defaultControl,
  logChoose,
  noiseBand,
  pairCounts,
  pairedBootstrap,
  outcomeIndex,
  sampleBinomial,
  type PairedCounts,
} from '../src/stats';

const pmf = (n: number, p: number, k: number) => Math.exp(logChoose(n, k) + k * Math.log(p) + (n - k) * Math.log1p(-p));

describe('sampleBinomial', () => {
  it.each([
    [1, 0.5],
    [10, 0.3],
    [7, 0.95],
    [500, 0.002],
    [2000, 0.3],
  ])('Binomial(%i, %f): frequencies match the exact pmf', (n, p) => {
    const rng = new Rng(11);
    const draws = 200_000;
    const counts = new Float64Array(n + 1);
    for (let i = 0; i < draws; i++) counts[sampleBinomial(rng, n, p)]!++;
    // total variation distance; for 200,000 draws sampling noise alone keeps it well under 0.01
    let tv = 0;
    let mean = 0;
    for (let k = 0; k <= n; k++) {
      tv += Math.abs(counts[k]! / draws - pmf(n, p, k)) / 2;
      mean += (k * counts[k]!) / draws;
    }
    expect(tv).toBeLessThan(0.01);
    const sd = Math.sqrt(n * p * (1 - p));
    expect(Math.abs(mean - n * p)).toBeLessThan((5 * sd) / Math.sqrt(draws) + 1e-9);
  });

  it('is exact at the ends and refuses what is no binomial', () => {
    const rng = new Rng(1);
    expect(sampleBinomial(rng, 0, 0.4)).toBe(0);
    expect(sampleBinomial(rng, 50, 0)).toBe(0);
    expect(sampleBinomial(rng, 50, 1)).toBe(50);
    expect(() => sampleBinomial(rng, 2.5, 0.5)).toThrow(/n must be a non-negative integer/);
    expect(() => sampleBinomial(rng, 5, 1.5)).toThrow(/p must be in \[0, 1\]/);
    expect(() => sampleBinomial(rng, 5, Number.NaN)).toThrow(/p must be in \[0, 1\]/);
  });
});

/** The resampling the counts replace: draw seeds, then each seed's n questions, one index at a time. */
function perQuestionBootstrap(seeds: readonly PairedCounts[], resamples: number, seed: number): [number, number] {
  const ds = seeds.map(({ n, b, c }) => Int8Array.from({ length: n }, (_, i) => (i < b ? 1 : i < b + c ? -1 : 0)));
  const rng = new Rng(seed);
  const stats = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let total = 0;
    for (let s = 0; s < seeds.length; s++) {
      const d = ds[rng.int(0, seeds.length - 1)]!;
      let sum = 0;
      for (let q = 0; q < d.length; q++) sum += d[rng.int(0, d.length - 1)]!;
      total += sum / d.length;
    }
    stats[r] = total / seeds.length;
  }
  stats.sort();
  const at = (p: number) => stats[Math.round(p * (resamples - 1))]!;
  return [at(0.025), at(0.975)];
}

describe('pairedBootstrap', () => {
  it('gives the interval of resampling questions one by one', () => {
    const seeds = [
      { seed: 1, n: 400, b: 60, c: 35 },
      { seed: 2, n: 400, b: 41, c: 38 },
      { seed: 3, n: 400, b: 55, c: 20 },
    ];
    const [lo, hi] = pairedBootstrap(seeds, { resamples: 20_000, seed: 5 });
    const [rlo, rhi] = perQuestionBootstrap(seeds, 20_000, 9);
    // two Monte Carlo estimates of the same percentiles: they agree to their sampling error (~0.002 here)
    expect(Math.abs(lo - rlo)).toBeLessThan(0.005);
    expect(Math.abs(hi - rhi)).toBeLessThan(0.005);
    expect(lo).toBeLessThan(hi);
  });

  it('of one seed with no discordant question is that Δ exactly', () => {
    expect(pairedBootstrap([{ n: 100, b: 0, c: 0 }], { resamples: 200 })).toEqual([0, 0]);
    expect(pairedBootstrap([{ n: 10, b: 10, c: 0 }], { resamples: 200 })).toEqual([1, 1]);
  });

  it('draws 2,000 resamples of 5 seeds × 2,000 questions in milliseconds, not seconds', () => {
    const seeds = [1, 2, 3, 4, 5].map((seed) => ({ seed, n: 2000, b: 300 + seed, c: 250 }));
    const t0 = performance.now();
    for (let i = 0; i < 3; i++) pairedBootstrap(seeds, { seed: i });
    // resampling question by question took ~3.4 s for these three on the dev machine; the counts take ~25 ms
    expect(performance.now() - t0).toBeLessThan(600);
  });
});

describe('pairing compact outcomes', () => {
  const run = (qs: string, bits: string) => ({ questionIds: qs.split(''), correct: [...bits].map(Number) });

  it('counts only shared questions; the noise band holds each pair both ways', () => {
    const a = run('abcdef', '110100');
    const b = run('abcdeg', '011100');
    // shared a–e: a only a right on "a", only b on "c"
    expect(pairCounts(a, outcomeIndex(b))).toEqual({ n: 5, b: 1, c: 1 });
    const c = run('abcdef', '000000');
    // a vs c: 3 of 6 only a; b vs c: 3 of 5 shared (f is not b's, g not c's)
    const band = noiseBand([a, b, c])!;
    expect(band.deltas.sort()).toEqual([-0.6, -0.5, 0, 0, 0.5, 0.6].sort());
    expect(band).toMatchObject({ lo: -0.6, hi: 0.6 });
    expect(noiseBand([a])).toBeNull();
  });
});

describe('arms', () => {
  const r = (method: string, constraint = 'none', parentRunId: string | null = 'p', config: unknown = {}) => ({
    method,
    constraint,
    parentRunId,
    config,
  });

  it('groups by method, constraint and the boundary β; a VFT run without a parent is the baseline', () => {
    expect(armOf(r('vft', 'none', null))).toMatchObject({ key: 'vft-parent|none|', label: 'VFT' });
    expect(armOf(r('vft'))).toMatchObject({ key: 'vft|none|', label: 'VFT (continued)' });
    expect(armOf(r('aft', 'boundary', 'p', { beta: 0.1 }))).toMatchObject({
      key: 'aft|boundary|0.1',
      label: 'AFT boundary β=0.1',
    });
    expect(armOf(r('aft', 'detach', 'p', { beta: 0.1 })).key).toBe('aft|detach|');
    expect(armOf(r('external', 'none', null)).label).toBe('EXTERNAL none');
  });

  it('orders arms as the table does and picks the control: continued VFT, the VFT parent, else the first', () => {
    const arms = [r('dpo'), r('aft', 'boundary', 'p', { beta: 0.3 }), r('vft', 'none', null), r('vft'), r('aft')]
      .map(armOf)
      .sort(compareArms)
      .map((a) => a.key);
    expect(arms).toEqual(['vft-parent|none|', 'vft|none|', 'aft|none|', 'aft|boundary|0.3', 'dpo|none|']);
    expect(defaultControl(arms)).toBe('vft|none|');
    expect(defaultControl(arms.filter((k) => k !== 'vft|none|'))).toBe('vft-parent|none|');
    expect(defaultControl(['dpo|none|', 'aft|none|'])).toBe('dpo|none|');
    expect(defaultControl([])).toBeNull();
  });
});
