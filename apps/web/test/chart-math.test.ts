import { describe, expect, it } from 'vitest';
import { appendRaw, logSafe, remapX, smooth, toColumns, withWallTime, type WireSeries } from '../src/lib/chart-math';
import { parseFilter, parseRunsView, runsViewHref, sortToggle } from '../src/lib/runs-url';
import { flatten, fmtNumber } from '../src/lib/format';

describe('toColumns', () => {
  it('turns non-finite raw values into counted gaps', () => {
    const c = toColumns({
      runId: 'r',
      key: 'k',
      mode: 'raw',
      steps: [0, 1, 2, 3],
      values: [1, 'NaN', 'Infinity', 2],
      times: [0, 0, 0, 0],
    });
    expect(c.y).toEqual([1, null, null, 2]);
    expect(c.nonFinite).toBe(2);
    expect(c.lo).toBeNull();
  });

  it('keeps bucket extremes as the band and centres buckets', () => {
    const s: WireSeries = {
      runId: 'r',
      key: 'k',
      mode: 'buckets',
      width: 4,
      steps: [0, 4],
      count: [4, 4],
      nan: [0, 1],
      min: [0.1, 0.2],
      max: [1e6, 0.3],
      first: [0.5, 0.2],
      last: [0.4, 0.25],
    };
    const c = toColumns(s);
    expect(c.x).toEqual([1.5, 5.5]);
    expect(c.hi).toEqual([1e6, 0.3]);
    expect(c.y).toEqual([0.4, 0.25]);
    expect(c.nonFinite).toBe(1);
    expect(c.points).toBe(8);
  });
});

describe('smooth', () => {
  it('is the identity at weight 0 and debiased at the start', () => {
    expect(smooth([1, 2, 3], 0)).toEqual([1, 2, 3]);
    const s = smooth([5, 5, 5], 0.9);
    s.forEach((v) => expect(v).toBeCloseTo(5, 10));
  });
  it('skips gaps without resetting', () => {
    const s = smooth([1, null, 1], 0.5);
    expect(s[1]).toBeNull();
    expect(s[2]).toBeCloseTo(1, 10);
  });
  it('lags a step change', () => {
    const s = smooth([0, 0, 0, 10, 10], 0.6) as number[];
    expect(s[3]).toBeGreaterThan(0);
    expect(s[3]).toBeLessThan(10);
    expect(s[4]).toBeGreaterThan(s[3]!);
  });
});

describe('logSafe and appendRaw', () => {
  it('drops non-positive values for log scale', () => {
    expect(logSafe([1, 0, -2, null, 3])).toEqual([1, null, null, null, 3]);
  });
  it('appends only steps after the last one', () => {
    const a = { runId: 'r', key: 'k', mode: 'raw' as const, steps: [0, 1], values: [1, 2], times: [0, 0] };
    const b = { ...a, steps: [1, 2, 3], values: [2, 3, 4], times: [0, 0, 0] };
    expect(appendRaw(a, b).steps).toEqual([0, 1, 2, 3]);
    expect(appendRaw(a, { ...a, steps: [1], values: [2], times: [0] })).toBe(a);
  });
});

describe('runs view URL state', () => {
  it('round-trips through the URL', () => {
    const v = parseRunsView({
      status: 'running,failed',
      tags: ['a', 'b'],
      sort: 'summary.acc',
      dir: 'asc',
      constraint: 'none,boundary',
      f: 'test/task_accuracy>=0.4; config.lr<0.001',
      cols: 'test/task_accuracy,test/ref_perplexity',
      group: '1',
    });
    expect(v).toMatchObject({
      status: ['running', 'failed'],
      tags: ['a', 'b'],
      sort: 'summary.acc',
      dir: 'asc',
      constraint: ['none', 'boundary'],
      filters: ['test/task_accuracy>=0.4', 'config.lr<0.001'],
      cols: ['test/task_accuracy', 'test/ref_perplexity'],
      group: true,
    });
    const href = runsViewHref('/p/1', v);
    const back = parseRunsView(Object.fromEntries(new URLSearchParams(href.split('?')[1])));
    expect(back).toEqual(v);
  });
  it('toggles sort direction and resets the cursor', () => {
    const v = parseRunsView({ sort: 'name', dir: 'desc', cursor: 'abc' });
    expect(sortToggle(v, 'name')).toEqual({ sort: 'name', dir: 'asc', cursor: null });
    expect(sortToggle(v, 'summary.acc')).toEqual({ sort: 'summary.acc', dir: 'desc', cursor: null });
  });
});

describe('withWallTime', () => {
  it('puts each point at its minutes since t0, and drops points that carry no time', () => {
    const raw: WireSeries = {
      runId: 'r',
      key: 'k',
      mode: 'raw',
      steps: [0, 1, 2],
      values: [1, 2, 3],
      times: [60_000, 120_000, 240_000],
    };
    expect(withWallTime(toColumns(raw), raw, 60_000).x).toEqual([0, 1, 3]);
    const b = {
      runId: 'r',
      key: 'k',
      mode: 'buckets',
      width: 2,
      steps: [0, 2],
      count: [2, 2],
      nan: [0, 0],
      min: [1, 2],
      max: [2, 3],
      first: [1, 2],
      last: [2, 3],
    } as WireSeries;
    expect(withWallTime(toColumns(b), b, 0).x).toEqual([]);
    const bt = { ...b, times: [0, 90_000] } as WireSeries;
    expect(withWallTime(toColumns(bt), bt, 0).x).toEqual([0, 1.5]);
  });
});

describe('remapX', () => {
  it('places each step at its cumulative token count, interpolating between the mapping’s points', () => {
    const cols = (x: number[], y: (number | null)[]) => ({ x, y, lo: null, hi: null, nonFinite: 0, points: x.length });
    const tokens = cols([1, 3, 5], [100, 300, null]);
    const loss = cols([0, 1, 2, 3, 4], [9, 8, 7, 6, 5]);
    expect(remapX(loss, tokens)).toMatchObject({ x: [100, 200, 300], y: [8, 7, 6] });
  });
});

describe('parseFilter', () => {
  it('reads summary and config filters with their operators', () => {
    expect(parseFilter('test/task_accuracy>=0.4')).toEqual({
      on: 'summary',
      path: 'test/task_accuracy',
      op: 'gte',
      value: 0.4,
    });
    expect(parseFilter('config.optim.lr < 1e-3')).toEqual({ on: 'config', path: 'optim.lr', op: 'lt', value: 0.001 });
    expect(parseFilter('config.method=aft')).toEqual({ on: 'config', path: 'method', op: 'eq', value: 'aft' });
    expect(parseFilter('degraded!=true')).toEqual({ on: 'summary', path: 'degraded', op: 'ne', value: true });
  });
  it('explains what it cannot read', () => {
    expect(parseFilter('accuracy')).toMatch(/is not a filter; write metric>=value/);
    expect(parseFilter('acc>=')).toMatch(/give a value after >=/);
    expect(parseFilter('method>aft')).toMatch(/> needs a number/);
  });
});

describe('format', () => {
  it('formats numbers and non-finite markers', () => {
    expect(fmtNumber(0.123456)).toBe('0.1235');
    expect(fmtNumber('NaN')).toBe('NaN');
    expect(fmtNumber(1234567)).toBe('1.235e+6');
    expect(fmtNumber(undefined)).toBe('—');
  });
  it('flattens nested configs', () => {
    expect(flatten({ a: 1, b: { c: 2, d: { e: 'x' } } })).toEqual([
      ['a', 1],
      ['b.c', 2],
      ['b.d.e', 'x'],
    ]);
  });
});
