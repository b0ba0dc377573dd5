/**
 * metrics.seriesPacked (libs/db/src/series-packed.ts, read by unpackSeries in @aft/contracts) against metrics.series:
 * on every read path — rollups, narrow buckets from summaries and from decoded points merged with a tail, widths past
 * the widest rollup, raw points, the sparse rule, an unknown key — the same buckets and counts, bucket values equal
 * to the JSON's at its float32 precision, raw values bit for bit (NaN, ±Infinity and -0 included).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unpackSeries, type UnpackedSeries } from '@aft/contracts';
import {
  bucketTimes,
  foldRun,
  insertMetricPoints,
  querySeries,
  querySeriesPacked,
  readPoints,
  type PointColumns,
  type SeriesRequest,
} from '@aft/db';
import { createTestDatabase, seedRun, type TestDatabase } from '@aft/db/testing';
import { createTeamWithKey, createTestHandler } from '../src/testing';

let t: TestDatabase;
const T0 = 1_750_000_000_000;

beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});

/** A seeded xorshift in [0, 1): the same curves every run. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

async function log(runId: string, steps: number[], value: (s: number) => number) {
  for (let i = 0; i < steps.length; i += 10_000) {
    const part = steps.slice(i, i + 10_000);
    const b: PointColumns = {
      keys: ['loss'],
      key: part.map(() => 0),
      step: part,
      value: part.map(value),
      time: part.map((s) => T0 + 7 * s),
    };
    await insertMetricPoints(t.db.pool, runId, b);
  }
}

const runNum = async (runId: string) =>
  (await t.db.pool.query<{ num: string }>('SELECT num::text AS num FROM run WHERE id = $1', [runId])).rows[0]!.num;

/** A JSON bucket value (float32 where float32 holds it) against the exact packed one. */
function sameAtF4(json: unknown, exact: unknown): boolean {
  if (json === exact) return true;
  if (typeof json !== 'number' || typeof exact !== 'number') return false;
  return Math.fround(exact) === Math.fround(json);
}

/** Packed against JSON for the same requests; returns the unpacked series for further checks. */
async function agree(reqs: SeriesRequest[]): Promise<UnpackedSeries[]> {
  const [json, packed] = await Promise.all([querySeries(t.db.pool, reqs), querySeriesPacked(t.db.pool, reqs)]);
  const un = packed.map(unpackSeries);
  expect(un.map((s) => [s.runId, s.key, s.mode])).toEqual(json.map((s) => [s.runId, s.key, s.mode]));
  for (const [k, j] of json.entries()) {
    const u = un[k]!;
    expect(u.steps).toEqual(j.steps);
    if (j.mode === 'raw' && u.mode === 'raw') {
      expect(u.times).toEqual(j.times);
      expect(u.values.map(String)).toEqual(j.values.map(String));
    } else if (j.mode === 'buckets' && u.mode === 'buckets') {
      expect(u.width).toBe(j.width);
      expect(u.count).toEqual(j.count);
      expect(u.nan).toEqual(j.nan);
      expect(u.times).toEqual(j.times);
      for (const col of ['min', 'max', 'first', 'last'] as const) {
        const bad = j[col].findIndex((v, i) => !sameAtF4(v, u[col][i]));
        expect(bad, `${col}[${bad}]: ${String(j[col][bad])} vs ${String(u[col][bad])}`).toBe(-1);
      }
    }
  }
  return un;
}

describe('metrics.seriesPacked', () => {
  it('reads rollups and narrow buckets as metrics.series does, all-NaN buckets, spikes and ±Infinity included', async () => {
    const { run } = await seedRun(t.db);
    const r = rng(7);
    const steps = Array.from({ length: 300_000 }, (_, s) => s);
    await log(run.id, steps, (s) =>
      s >= 40_960 && s < 43_008
        ? NaN
        : s === 99_999
          ? Infinity
          : s === 123_457
            ? -Infinity
            : r() < 1e-4
              ? 1e30
              : Math.exp(-s / 50_000) + 0.01 * r(),
    );
    await foldRun(t.db.pool, await runNum(run.id), { force: true });
    const base = { runId: run.id, key: 'loss' };
    const un = await agree([
      { ...base, buckets: 200 }, // width 2048: a rollup
      { ...base, buckets: 1000 }, // width 512: narrow, from chunk summaries
      { ...base, buckets: 1000, minStep: 1000, maxStep: 40_000 }, // width 64: summaries of part of a chunk
      { ...base, buckets: 1000, minStep: 5, maxStep: 20_004 }, // width 32: decoded points
      { ...base, buckets: 50, minStep: 30_000, maxStep: 140_000, withTimes: true },
    ]);
    expect(un.map((s) => (s.mode === 'buckets' ? s.width : 0))).toEqual([2048, 512, 64, 32, 4096]);
    // the all-NaN stretch: buckets with count = nan and no min or max
    const wide = un[0]!;
    if (wide.mode !== 'buckets') throw new Error('expected buckets');
    const nanOnly = wide.steps.flatMap((s, i) => (wide.count[i] === wide.nan[i] ? [s] : []));
    expect(nanOnly).toEqual([40_960]);
    expect(wide.min[wide.steps.indexOf(40_960)]).toBeNull();
    expect(wide.max.filter((v) => v === 'Infinity')).toHaveLength(1);
    expect(wide.min.filter((v) => v === '-Infinity')).toHaveLength(1);
  });

  it('merges a live tail with the chunks: late points inside folded buckets and steps past them', async () => {
    const { run } = await seedRun(t.db);
    const even = Array.from({ length: 10_000 }, (_, i) => 2 * i);
    await log(run.id, even, (s) => Math.sin(s / 300));
    await foldRun(t.db.pool, await runNum(run.id), { force: true });
    // late odd steps land in the tail, inside buckets the chunks hold; then steps past the folded ones
    const late = Array.from({ length: 500 }, (_, i) => 1001 + 2 * i);
    await log(run.id, late, (s) => (s === 1501 ? -50 : s === 1503 ? NaN : Math.cos(s / 300)));
    await log(
      run.id,
      Array.from({ length: 3000 }, (_, i) => 20_000 + i),
      (s) => s / 1e4,
    );
    const base = { runId: run.id, key: 'loss' };
    const un = await agree([
      { ...base, buckets: 1000 }, // width 32, decoded points and tail
      { ...base, buckets: 100 }, // width 256, summaries and tail
      { ...base, buckets: 1000, minStep: 20_500, maxStep: 22_999 }, // tail only
    ]);
    const b = un[0]!;
    if (b.mode !== 'buckets') throw new Error('expected buckets');
    // the bucket holding step 1501 has the late point's -50 as its min, and the NaN at 1503 counted
    const k = b.steps.indexOf(Math.floor(1501 / 32) * 32);
    expect(k).toBeGreaterThanOrEqual(0);
    expect(b.min[k]).toBe(-50);
    expect(b.nan[k]).toBe(1);
  });

  it('reads raw points bit for bit, widths past the widest rollup, the sparse rule and an unknown key', async () => {
    const { run } = await seedRun(t.db);
    const steps = Array.from({ length: 3000 }, (_, s) => s);
    const special = [NaN, Infinity, -Infinity, -0, 5e-324, Number.MAX_VALUE, 0.1 + 0.2];
    await log(run.id, steps, (s) => (s < special.length ? special[s]! : Math.log1p(s)));
    // a second key, sparse over 100 million steps
    const sparse = Array.from({ length: 60 }, (_, i) => i * 1_700_000);
    await insertMetricPoints(t.db.pool, run.id, {
      keys: ['far'],
      key: sparse.map(() => 0),
      step: sparse,
      value: sparse.map((s) => s / 1e6),
      time: sparse.map(() => T0),
    });
    await foldRun(t.db.pool, await runNum(run.id), { force: true });
    const un = await agree([
      { runId: run.id, key: 'loss', buckets: 5000 }, // raw: the whole series fits
      { runId: run.id, key: 'loss', buckets: 2000, minStep: 0, maxStep: 1999 }, // raw: a zoom
      { runId: run.id, key: 'far', buckets: 10 }, // a width of 2^24: rollups merged, from the JSON reader
      { runId: run.id, key: 'far', buckets: 100 }, // 60 points under the budget: sent raw
      { runId: run.id, key: 'nope', buckets: 100 }, // no such key: empty
    ]);
    expect(un.map((s) => s.mode)).toEqual(['raw', 'raw', 'buckets', 'raw', 'raw']);
    const raw = (await querySeriesPacked(t.db.pool, [{ runId: run.id, key: 'loss', buckets: 5000 }])).map(
      unpackSeries,
    )[0]!;
    const exact = await readPoints(t.db.pool, await runNum(run.id), 1, 0, 2999);
    if (raw.mode !== 'raw') throw new Error('expected raw');
    // -0 and the float64 extremes survive exactly (the JSON form cannot carry -0)
    const bits = (v: unknown) => (typeof v === 'number' ? (Object.is(v, -0) ? '-0' : String(v)) : v);
    expect(raw.values.map(bits)).toEqual(Array.from(exact.values, (v) => bits(Number.isFinite(v) ? v : String(v))));
    expect(un[4]).toMatchObject({ steps: [], values: [], times: [] });
  });

  it("lines each bucket's wall time up with the buckets read before it, leaving out a bucket opened since", async () => {
    const { run } = await seedRun(t.db);
    await log(
      run.id,
      Array.from({ length: 4000 }, (_, s) => s),
      (s) => s,
    );
    const num = await runNum(run.id);
    const keyId = (
      await t.db.pool.query<{ key_id: number }>(`SELECT key_id FROM run_metric WHERE run_id = $1 AND key = 'loss'`, [
        run.id,
      ])
    ).rows[0]!.key_id;
    const stats = { run_id: run.id, key: 'loss', num, key_id: keyId, count: 4000, min_step: 0, last_step: 3999 };
    // buckets 0, 1024 and 3072 as the counts saw them; 2048 was opened by a point logged after
    const times = await bucketTimes(t.db.pool, stats, 1024, 0, 3999, [0, 1024, 3072]);
    expect(times).toEqual([T0 + 7 * 1023, T0 + 7 * 2047, T0 + 7 * 3999]);
  });

  it('serves the same checks as metrics.series over HTTP: another team reads 404, a bad input 400 naming the field', async () => {
    const api = createTestHandler(t.db, t.url);
    try {
      const mine = await createTeamWithKey(t.db, `packed-${Date.now()}`);
      const theirs = await createTeamWithKey(t.db, `packed-other-${Date.now()}`);
      const created = await api.call('runs.create', { project: 'p' }, { key: mine.key });
      const runId = (created.json.result!.data as { id: string }).id;
      await api.call(
        'metrics.log',
        { runId, points: Array.from({ length: 3000 }, (_, s) => ({ key: 'loss', step: s, value: 1 / (s + 1) })) },
        { key: mine.key },
      );
      const input = { runIds: [runId], keys: ['loss'], buckets: 100 };
      const packed = await api.call('metrics.seriesPacked', input, { key: mine.key, method: 'GET' });
      const json = await api.call('metrics.series', input, { key: mine.key, method: 'GET' });
      expect(packed.status).toBe(200);
      const un = (packed.json.result!.data as Parameters<typeof unpackSeries>[0][]).map(unpackSeries);
      expect(un.map((s) => s.steps)).toEqual((json.json.result!.data as { steps: number[] }[]).map((s) => s.steps));
      const other = await api.call('metrics.seriesPacked', input, { key: theirs.key, method: 'GET' });
      expect(other.status).toBe(404);
      const bad = await api.call('metrics.seriesPacked', { ...input, buckets: 5 }, { key: mine.key, method: 'GET' });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.json)).toContain('buckets');
    } finally {
      await api.notifier.close();
    }
  });
});
