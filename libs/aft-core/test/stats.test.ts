import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  binomialUpperTail,
  mcnemarExact,
  mcnemarOneSided,
  pairedComparison,
  parseCorrectnessLines,
  tInterval,
  tQuantile,
  verdict,
  type CorrectnessRow,
} from '../src/stats';

describe('exact tests', () => {
  it('McNemar exact two-sided p matches hand-computed binomial sums', () => {
    // n = 12, P(X ≥ 10) = (66 + 12 + 1) / 4096
    expect(mcnemarExact(10, 2)).toBeCloseTo((2 * 79) / 4096, 12);
    expect(mcnemarExact(2, 10)).toBeCloseTo((2 * 79) / 4096, 12);
    expect(mcnemarExact(0, 6)).toBeCloseTo(2 / 64, 12);
    expect(mcnemarExact(5, 5)).toBe(1);
    expect(mcnemarExact(0, 0)).toBe(1);
    expect(mcnemarExact(0, 1)).toBe(1);
    // one-sided: 8 of 9 discordant pairs the bad way, P(X ≥ 8 | n = 9) = (9 + 1) / 512
    expect(mcnemarOneSided(8, 1)).toBeCloseTo(10 / 512, 12);
    expect(binomialUpperTail(2000, 1000)).toBeCloseTo(0.5 + 0.5 * Math.exp(-2000 * Math.LN2 + logC(2000, 1000)), 8);
  });

  it("Student's t quantiles match the tables", () => {
    expect(tQuantile(0.975, 1)).toBeCloseTo(12.7062, 3);
    expect(tQuantile(0.975, 4)).toBeCloseTo(2.7764, 4);
    expect(tQuantile(0.975, 29)).toBeCloseTo(2.0452, 4);
    expect(tQuantile(0.025, 9)).toBeCloseTo(-2.2622, 4);
    expect(tQuantile(0.95, 1000)).toBeCloseTo(1.6464, 3);
  });

  it('t-interval of a mean by hand', () => {
    const [lo, hi] = tInterval([1, 2, 3, 4, 5])!;
    const half = 2.776445 * (Math.sqrt(2.5) / Math.sqrt(5));
    expect(lo).toBeCloseTo(3 - half, 4);
    expect(hi).toBeCloseTo(3 + half, 4);
    expect(tInterval([0.1])).toBeNull();
  });
});

function logC(n: number, k: number): number {
  let s = 0;
  for (let i = 1; i <= k; i++) s += Math.log(n - k + i) - Math.log(i);
  return s;
}

/** One seed's rows for two arms: `b` questions only the arm is right on, `c` only the control, `both`, `neither`. */
function seedRows(seed: number, arm: string, b: number, c: number, both: number, neither: number): CorrectnessRow[] {
  const rows: CorrectnessRow[] = [];
  let q = 0;
  const add = (a: boolean, ctl: boolean, count: number) => {
    for (let i = 0; i < count; i++, q++) {
      rows.push(
        { seed, arm, questionId: `q${q}`, correct: a },
        { seed, arm: 'control', questionId: `q${q}`, correct: ctl },
      );
    }
  };
  add(true, false, b);
  add(false, true, c);
  add(true, true, both);
  add(false, false, neither);
  return rows;
}

describe('paired comparison', () => {
  it('per seed: only shared questions, Δ = (b − c) / n, McNemar, wins; over seeds: mean and t-interval', () => {
    const rows = [
      ...seedRows(1, 'aft', 6, 2, 10, 2),
      ...seedRows(2, 'aft', 3, 3, 8, 6),
      ...seedRows(3, 'aft', 5, 1, 9, 5),
    ];
    // a question only the arm answered is not paired
    rows.push({ seed: 1, arm: 'aft', questionId: 'extra', correct: true });
    const r = pairedComparison(rows, 'control', { resamples: 500, seed: 7 });
    const a = r.arms['aft']!;
    expect(a.perSeed).toEqual([
      { seed: 1, n: 20, delta: 4 / 20, b: 6, c: 2, p: mcnemarExact(6, 2) },
      { seed: 2, n: 20, delta: 0, b: 3, c: 3, p: 1 },
      { seed: 3, n: 20, delta: 4 / 20, b: 5, c: 1, p: mcnemarExact(5, 1) },
    ]);
    expect(a.meanDelta).toBeCloseTo(8 / 60, 12);
    expect(a.t95).toEqual(tInterval([0.2, 0, 0.2]));
    expect(a.wins).toBe(2);
    expect(a.seeds).toBe(3);
    expect(a.bootstrap95[0]).toBeLessThanOrEqual(a.meanDelta);
    expect(a.bootstrap95[1]).toBeGreaterThanOrEqual(a.meanDelta);
    // the same seed gives the same interval; another seed another one
    expect(pairedComparison(rows, 'control', { resamples: 500, seed: 7 }).arms['aft']!.bootstrap95).toEqual(
      a.bootstrap95,
    );
    expect(pairedComparison(rows, 'control', { resamples: 500, seed: 8 }).arms['aft']!.bootstrap95).not.toEqual(
      a.bootstrap95,
    );
    expect(() => pairedComparison(rows, 'vft')).toThrow(/control arm "vft" has no rows/);
  });

  it('the bootstrap interval agrees with the analytic one on a large sample', () => {
    // one seed, 4,000 questions: Δ = 0.05, var(d) = (b + c) / n − Δ², normal interval Δ ± 1.96 √(var / n)
    const n = 4000;
    const [b, c] = [600, 400];
    const rows = seedRows(1, 'arm', b, c, 1500, n - b - c - 1500);
    const a = pairedComparison(rows, 'control', { resamples: 4000, seed: 3 }).arms['arm']!;
    const half = 1.959964 * Math.sqrt(((b + c) / n - 0.05 ** 2) / n);
    expect(a.bootstrap95[0]).toBeCloseTo(0.05 - half, 2);
    expect(a.bootstrap95[1]).toBeCloseTo(0.05 + half, 2);
    expect(Math.abs(a.bootstrap95[0] - (0.05 - half))).toBeLessThan(0.002);
    expect(Math.abs(a.bootstrap95[1] - (0.05 + half))).toBeLessThan(0.002);
    expect(verdict(a)).toBe('better');
  });

  it('calls a difference that noise explains "within noise"', () => {
    const rows = [...seedRows(1, 'arm', 4, 3, 20, 3), ...seedRows(2, 'arm', 2, 3, 20, 5)];
    expect(verdict(pairedComparison(rows, 'control').arms['arm']!)).toBe('within noise');
  });
});

describe('rows', () => {
  it('refuses bad lines naming the line and the field', () => {
    const ok = '{"seed":1,"arm":"a","questionId":"q1","correct":true}';
    expect(parseCorrectnessLines([ok, '', '{"seed":1,"arm":"a","questionId":"q2","correct":false}'])).toHaveLength(2);
    expect(() => parseCorrectnessLines([ok, 'nope'])).toThrow(/^line 2: not JSON$/);
    expect(() => parseCorrectnessLines([ok, '{"seed":1.5,"arm":"a","questionId":"q","correct":true}'])).toThrow(
      /line 2: seed must be an integer/,
    );
    expect(() => parseCorrectnessLines(['{"seed":1,"arm":"","questionId":"q","correct":true}'])).toThrow(
      /line 1: arm must be/,
    );
    expect(() => parseCorrectnessLines(['{"seed":1,"arm":"a","questionId":"q","correct":1}'])).toThrow(
      /line 1: correct must be true or false/,
    );
    expect(() => parseCorrectnessLines(['{"seed":1,"arm":"a","questionId":"q","correct":true,"x":1}'])).toThrow(
      /line 1: unknown field x/,
    );
    expect(() => parseCorrectnessLines([ok, ok])).toThrow(/line 2: .*already given on line 1/);
  });
});

describe('aft stats paired', { timeout: 60_000 }, () => {
  const ROOT = resolve(import.meta.dirname, '../../..');
  const aft = (args: string[], input: string) =>
    spawnSync(join(ROOT, 'node_modules/.bin/aft'), args, { cwd: ROOT, input, encoding: 'utf8', timeout: 60_000 });

  it('prints the paired report as one JSON object, and refuses a bad line by number', () => {
    const rows = [...seedRows(1, 'aft-detach', 6, 2, 10, 2), ...seedRows(2, 'aft-detach', 4, 1, 10, 5)];
    const r = aft(['stats', 'paired', '--control', 'control'], rows.map((x) => JSON.stringify(x)).join('\n'));
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.control).toBe('control');
    expect(out.arms['aft-detach'].perSeed).toEqual([
      { seed: 1, n: 20, delta: 0.2, b: 6, c: 2, p: mcnemarExact(6, 2) },
      { seed: 2, n: 20, delta: 0.15, b: 4, c: 1, p: mcnemarExact(4, 1) },
    ]);
    expect(out.arms['aft-detach']).toMatchObject({ meanDelta: 0.175, wins: 2, seeds: 2 });
    expect(out.arms['aft-detach'].t95).toHaveLength(2);
    expect(out.arms['aft-detach'].bootstrap95).toHaveLength(2);

    const bad = aft(['stats', 'paired', '--control', 'control'], `${JSON.stringify(rows[0])}\n{"seed":"1"}\n`);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/line 2: seed must be an integer/);
    expect(bad.stdout).toBe('');
  });
});
