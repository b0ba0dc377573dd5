import { describe, expect, it } from 'vitest';
import { useTestDatabase } from './test-db';
import { countPoints, countStoredPoints, seedRun } from '../src/testing';
import {
  bucketWidth,
  deleteRun,
  foldKey,
  insertMetricPoints,
  querySeries,
  resolveKeyIds,
  ROLLUP_WIDTHS,
  RunNotFoundError,
  type MetricPoint,
} from '../src';

const t = useTestDatabase();

const count = async (runId: string) => (await countPoints(t.db, runId)).n;

describe('insertMetricPoints', () => {
  it('stores a batch sent twice once, and keeps rollups and key stats exact', async () => {
    const { run } = await seedRun(t.db);
    const batch: MetricPoint[] = Array.from({ length: 5000 }, (_, i) => ({ key: 'loss', step: i, value: 1 / (i + 1) }));
    const a = await insertMetricPoints(t.db.pool, run.id, batch);
    const b = await insertMetricPoints(t.db.pool, run.id, batch);
    expect(a.inserted).toBe(5000);
    expect(b).toMatchObject({ inserted: 0, skipped: 5000 });
    expect(await count(run.id)).toBe(5000);
    const roll = await t.db.pool.query<{ width: number; n: number }>(
      `SELECT width, sum(count)::int AS n FROM metric_rollup m JOIN run r ON r.num = m.run_num
       WHERE r.id = $1 GROUP BY width ORDER BY width`,
      [run.id],
    );
    expect(roll.rows).toEqual(ROLLUP_WIDTHS.map((width) => ({ width, n: 5000 })));
    const stats = await t.db.prisma.runMetric.findUniqueOrThrow({
      where: { runId_key: { runId: run.id, key: 'loss' } },
    });
    expect(stats).toMatchObject({ count: 5000, minStep: 0, lastStep: 4999, lastValue: 1 / 5000 });
  });

  it('stores a point repeated within one batch once', async () => {
    const { run } = await seedRun(t.db);
    const r = await insertMetricPoints(t.db.pool, run.id, [
      { key: 'x', step: 1, value: 1 },
      { key: 'x', step: 1, value: 2 },
    ]);
    expect(r).toMatchObject({ inserted: 1, skipped: 1 });
  });

  it('keeps NaN and ±Infinity', async () => {
    const { run } = await seedRun(t.db);
    await insertMetricPoints(t.db.pool, run.id, [
      { key: 'loss', step: 0, value: 0.5 },
      { key: 'loss', step: 1, value: NaN },
      { key: 'loss', step: 2, value: Infinity },
      { key: 'loss', step: 3, value: -Infinity },
    ]);
    const [s] = await querySeries(t.db.pool, [{ runId: run.id, key: 'loss', buckets: 100 }]);
    expect(s).toMatchObject({ mode: 'raw', steps: [0, 1, 2, 3], values: [0.5, 'NaN', 'Infinity', '-Infinity'] });
  });

  it('refuses an unknown run and writes nothing', async () => {
    await expect(
      insertMetricPoints(t.db.pool, 'no-such-run', [{ key: 'a', step: 0, value: 1 }]),
    ).rejects.toBeInstanceOf(RunNotFoundError);
    expect(await count('no-such-run')).toBe(0);
  });

  it('refuses a run of another team', async () => {
    const { run } = await seedRun(t.db);
    const other = await seedRun(t.db);
    await expect(
      insertMetricPoints(t.db.pool, run.id, [{ key: 'a', step: 0, value: 1 }], { teamId: other.team.id }),
    ).rejects.toBeInstanceOf(RunNotFoundError);
    expect(await count(run.id)).toBe(0);
  });
});

describe('querySeries', () => {
  it('gives each bucket the wall time of its last point when asked', async () => {
    const { run } = await seedRun(t.db);
    const t0 = Date.UTC(2026, 0, 1);
    // 5,000 steps, one a second, with a gap of an hour before step 2,500
    const time = (step: number) => t0 + step * 1000 + (step >= 2500 ? 3_600_000 : 0);
    await insertMetricPoints(t.db.pool, run.id, {
      keys: ['loss'],
      key: new Array<number>(5000).fill(0),
      step: Array.from({ length: 5000 }, (_, i) => i),
      value: Array.from({ length: 5000 }, (_, i) => 1 / (i + 1)),
      time: Array.from({ length: 5000 }, (_, i) => time(i)),
    });
    const [plain] = await querySeries(t.db.pool, [{ runId: run.id, key: 'loss', buckets: 100 }]);
    expect(plain && 'times' in plain).toBe(false);
    const [s] = await querySeries(t.db.pool, [{ runId: run.id, key: 'loss', buckets: 100, withTimes: true }]);
    expect(s?.mode).toBe('buckets');
    if (s?.mode !== 'buckets') return;
    expect(s.times).toHaveLength(s.steps.length);
    s.steps.forEach((st, i) => expect(s.times![i], `bucket at ${st}`).toBe(time(Math.min(st + s.width - 1, 4999))));
  });

  it('keeps a one-point spike among 100,000 points', async () => {
    const { run } = await seedRun(t.db);
    const spikeAt = 61_234;
    for (let start = 0; start < 100_000; start += 10_000) {
      const pts = Array.from({ length: 10_000 }, (_, i) => {
        const step = start + i;
        return { key: 'loss', step, value: step === spikeAt ? 1e6 : Math.sin(step / 1000) };
      });
      await insertMetricPoints(t.db.pool, run.id, pts);
    }
    const [s] = await querySeries(t.db.pool, [{ runId: run.id, key: 'loss', buckets: 1000 }]);
    expect(s?.mode).toBe('buckets');
    if (s?.mode !== 'buckets') return;
    expect(s.steps.length).toBeLessThanOrEqual(1000);
    expect(s.steps.every((st, i) => i === 0 || st > s.steps[i - 1]!)).toBe(true);
    expect(s.count.reduce((a, b) => a + b, 0)).toBe(100_000);
    const maxes = s.max.map(Number);
    const top = maxes.indexOf(Math.max(...maxes));
    expect(maxes[top]).toBe(1e6);
    expect(spikeAt).toBeGreaterThanOrEqual(s.steps[top]!);
    expect(spikeAt).toBeLessThan(s.steps[top]! + s.width);
    // min skips nothing here, and first/last of each bucket are the values at its first and last step
    expect(s.first[0]).toBe(Math.sin(0));
    expect(s.last[0]).toBeCloseTo(Math.sin((s.width - 1) / 1000), 6); // float32 display precision
    expect(Number(s.min[top])).toBeLessThan(1);

    // zoomed in on 300 steps: raw points, spike included
    const [z] = await querySeries(t.db.pool, [
      { runId: run.id, key: 'loss', buckets: 1000, minStep: spikeAt - 150, maxStep: spikeAt + 149 },
    ]);
    expect(z?.mode).toBe('raw');
    if (z?.mode === 'raw') {
      expect(z.steps).toHaveLength(300);
      expect(z.values[z.steps.indexOf(spikeAt)]).toBe(1e6);
    }
    // a zoom that needs raw-level buckets (width < smallest rollup) still finds the spike
    const [m] = await querySeries(t.db.pool, [
      { runId: run.id, key: 'loss', buckets: 100, minStep: spikeAt - 1000, maxStep: spikeAt + 1000 },
    ]);
    expect(m?.mode).toBe('buckets');
    if (m?.mode === 'buckets') expect(Math.max(...m.max.map(Number))).toBe(1e6);
    // a range so wide that buckets merge the widest rollups
    await insertMetricPoints(t.db.pool, run.id, [{ key: 'loss', step: 9_000_000, value: -5 }]);
    const [wide] = await querySeries(t.db.pool, [{ runId: run.id, key: 'loss', buckets: 20 }]);
    if (wide?.mode !== 'buckets') throw new Error('expected buckets');
    expect(wide.width).toBeGreaterThan(65_536);
    expect(wide.count.reduce((a, b) => a + b, 0)).toBe(100_001);
    expect(Math.max(...wide.max.map(Number))).toBe(1e6);
    expect(wide.last[wide.last.length - 1]).toBe(-5);
  });

  it('returns an empty series for an unknown key and a NaN bucket keeps its NaN count', async () => {
    const { run } = await seedRun(t.db);
    const pts = Array.from({ length: 3000 }, (_, i) => ({ key: 'v', step: i, value: i === 1500 ? NaN : i }));
    await insertMetricPoints(t.db.pool, run.id, pts);
    const [s, none] = await querySeries(t.db.pool, [
      { runId: run.id, key: 'v', buckets: 100 },
      { runId: run.id, key: 'nope', buckets: 100 },
    ]);
    expect(none).toMatchObject({ mode: 'raw', steps: [] });
    // values float32 cannot hold come back exactly, not as an error
    await insertMetricPoints(t.db.pool, run.id, [
      { key: 'v', step: 3000, value: 1e300 },
      { key: 'v', step: 3040, value: -1e-300 },
      { key: 'v', step: 3080, value: -Infinity },
    ]);
    const [big] = await querySeries(t.db.pool, [{ runId: run.id, key: 'v', buckets: 100 }]);
    if (big?.mode !== 'buckets') throw new Error('expected buckets');
    expect(big.max).toContain(1e300);
    expect(big.min).toContain(-1e-300);
    expect(big.last.at(-1)).toBe('-Infinity');
    if (s?.mode !== 'buckets') throw new Error('expected buckets');
    expect(s.nan.reduce((a, b) => a + b, 0)).toBe(1);
    expect(s.count.reduce((a, b) => a + b, 0)).toBe(3000);
  });
});

describe('bucketWidth', () => {
  it('is the smallest power of two giving at most n aligned buckets', () => {
    expect(bucketWidth(0, 99_999, 1000)).toBe(128);
    expect(bucketWidth(0, 999, 1000)).toBe(1);
    expect(bucketWidth(5, 1004, 1000)).toBe(1);
    expect(bucketWidth(5, 1005, 1000)).toBe(2);
    for (const [lo, hi, n] of [
      [17, 123_457, 333],
      [0, 1, 1],
      [1_000_000, 2_000_000, 64],
    ] as const) {
      const w = bucketWidth(lo, hi, n);
      expect(Math.floor(hi / w) - Math.floor(lo / w) + 1).toBeLessThanOrEqual(n);
      if (w > 1) expect(Math.floor(hi / (w / 2)) - Math.floor(lo / (w / 2)) + 1).toBeGreaterThan(n);
    }
  });
});

describe('deleteRun', () => {
  it('removes the run with its points and rollups, and only for its team', async () => {
    const { run, team } = await seedRun(t.db);
    const other = await seedRun(t.db);
    await insertMetricPoints(t.db.pool, run.id, [
      { key: 'a', step: 0, value: 1 },
      { key: 'b', step: 0, value: 2 },
    ]);
    // one key folded into a chunk, the other still in the tail: both go
    await foldKey(t.db.pool, String(run.num), (await resolveKeyIds(t.db.pool, ['a'])).get('a')!, { force: true });
    await expect(deleteRun(t.db.pool, run.id, other.team.id)).rejects.toBeInstanceOf(RunNotFoundError);
    expect(await count(run.id)).toBe(2);
    await deleteRun(t.db.pool, run.id, team.id);
    expect(await countStoredPoints(t.db.pool, String(run.num))).toEqual({ n: 0, distinct: 0 });
    const rollups = await t.db.pool.query('SELECT 1 FROM metric_rollup WHERE run_num = $1', [run.num]);
    expect(rollups.rowCount).toBe(0);
  });
});
