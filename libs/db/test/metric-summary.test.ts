import { describe, expect, it } from 'vitest';
import { encodeSummary, joinSummaries, readSummary, SUMMARY_WIDTH, type SubBucket } from '../src/metric-summary';

/** Sub-bucket aggregates computed the plain way, for comparison. */
function reference(steps: number[], values: number[]): SubBucket[] {
  const out: SubBucket[] = [];
  steps.forEach((s, i) => {
    const b = Math.floor(s / SUMMARY_WIDTH);
    const v = values[i]!;
    let e = out[out.length - 1];
    if (!e || e.b !== b) out.push((e = { b, count: 0, nan: 0, min: null, max: null, first: v, last: v, fs: s, ls: s }));
    e.count++;
    e.last = v;
    e.ls = s;
    if (Number.isNaN(v)) e.nan++;
    else {
      if (e.min === null || v < e.min) e.min = v;
      if (e.max === null || v > e.max) e.max = v;
    }
  });
  return out;
}

/** A bucket value as the series JSON carries it (series-narrow.ts f4): float32 within its range, else whole. */
const wire = (v: number | null) =>
  v === null || !(v === 0 || (Math.abs(v) >= 1.2e-38 && Math.abs(v) <= 3.4e38)) ? v : Math.fround(v);

const read = (sum: Buffer, first: number, lo = -(2 ** 31), hi = 2 ** 31 - 1) => {
  const out: SubBucket[] = [];
  readSummary(sum, first, lo, hi, (s) => out.push({ ...s }));
  return out;
};

/** 1,500 points over every kind of value, with a gap or two in the steps and a sub-bucket of NaN only. */
function mixed() {
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const steps: number[] = [];
  for (let s = -300; steps.length < 1500; s += 1 + Math.floor(rnd() * 2)) steps.push(s);
  const values = steps.map((s, i) =>
    i % 97 === 0
      ? NaN
      : i % 211 === 0
        ? Infinity
        : i % 223 === 0
          ? -Infinity
          : i % 50 === 0
            ? -0
            : i % 3 === 0
              ? Math.fround(rnd())
              : i % 7 === 0
                ? (rnd() - 0.5) * 1e39
                : i % 11 === 0
                  ? rnd() * 1e-39
                  : rnd() * 1e-3 - s,
  );
  // a sub-bucket of NaN only
  for (let i = 0; i < steps.length; i++)
    if (Math.floor(steps[i]! / 64) === Math.floor(steps[660]! / 64)) values[i] = NaN;
  return { steps, values };
}

describe('chunk summaries', () => {
  it('give back the aggregates of the points as the wire carries them: float64, float32, NaN, ±Inf, -0, huge, tiny', () => {
    const { steps, values } = mixed();
    const sum = encodeSummary(steps, values);
    const got = read(sum, steps[0]!);
    const want = reference(steps, values);
    expect(got.length).toBe(want.length);
    got.forEach((g, i) => {
      const w = want[i]!;
      for (const k of ['b', 'count', 'nan', 'fs', 'ls'] as const) expect(g[k]).toBe(w[k]);
      for (const k of ['min', 'max', 'first', 'last'] as const)
        expect(Object.is(g[k], wire(w[k])) || [i, k, g[k], w[k]]).toBe(true);
    });
    expect(got.some((g) => g.min === null)).toBe(true);
    // a dense float64 curve: about 19 bytes a full sub-bucket of 64 points
    const dense = encodeSummary(
      range(1000),
      range(1000).map((s) => 1 / (s + 1) + 1e-12 * Math.sin(s)),
    );
    expect(dense.length / 1000).toBeLessThan(0.33);
    // values past float32's range are kept whole: bigger
    const huge = encodeSummary(
      range(1000),
      range(1000).map((s) => 1e300 / (s + 1)),
    );
    expect(huge.length).toBeGreaterThan(dense.length * 1.5);
  });

  it('joins the summaries of chunks laid end to end into the summary of all their points, byte for byte', () => {
    const { steps, values } = mixed();
    for (const cuts of [[1000], [100, 700, 1299], [64, 128, 500, 1400]]) {
      const ends = [0, ...cuts, steps.length];
      const parts = ends.slice(1).map((e, i) => ({
        summary: encodeSummary(steps.slice(ends[i], e), values.slice(ends[i], e)),
        firstStep: steps[ends[i]!]!,
      }));
      expect(joinSummaries(parts)?.equals(encodeSummary(steps, values))).toBe(true);
    }
    // a part too sparse for a summary leaves the join to the points
    expect(
      joinSummaries([
        { summary: encodeSummary(range(100), range(100)), firstStep: 0 },
        { summary: Buffer.alloc(0), firstStep: 200 },
      ]),
    ).toBe(null);
  });

  it('visits only the sub-buckets inside the asked range', () => {
    const steps = range(1000);
    const sum = encodeSummary(steps, steps);
    const got = read(sum, 0, 128, 383);
    expect(got.map((g) => g.b)).toEqual([2, 3, 4, 5]);
    expect(got[0]!.first).toBe(128);
    expect(got[3]!.last).toBe(383);
  });

  it('is empty for sparse steps, where a summary would outweigh the points', () => {
    expect(encodeSummary(range(100, 0, 10), range(100)).length).toBe(0);
    expect(encodeSummary(range(100), range(100)).length).toBeGreaterThan(0);
  });
});

function range(n: number, from = 0, by = 1): number[] {
  return Array.from({ length: n }, (_, i) => from + i * by);
}
