import { describe, expect, it } from 'vitest';
import { tailRowCount, useTestDatabase } from './test-db';
import {
  countStoredPoints,
  foldKey,
  foldKeys,
  insertMetricPoints,
  metricFolder,
  metricHistory,
  querySeries,
  readPoints,
  resolveKeyIds,
  SLICE_CHUNKS,
  STEP_MAX,
  STEP_MIN,
  type PointColumns,
} from '../src';
import { seedRun } from '../src/testing';

const t = useTestDatabase();

const T0 = 1_750_000_000_000;

function cols(key: string, steps: number[], value: (s: number, i: number) => number): PointColumns {
  return { keys: [key], key: steps.map(() => 0), step: steps, value: steps.map(value), time: steps.map((s) => T0 + s) };
}

async function seeded(key: string, b: PointColumns) {
  const { run } = await seedRun(t.db);
  const num = (await t.db.pool.query<{ num: string }>('SELECT num::text AS num FROM run WHERE id = $1', [run.id]))
    .rows[0]!.num;
  await insertMetricPoints(t.db.pool, run.id, b, { fold: false });
  const keyId = (await resolveKeyIds(t.db.pool, [key])).get(key)!;
  return { run, num, keyId };
}

const chunks = (num: string, keyId: number) =>
  t.db.pool
    .query<{ first_step: number; last_step: number; count: number; x: string }>(
      `SELECT first_step, last_step, count, xmin::text AS x FROM metric_chunk WHERE run_num = $1 AND key_id = $2
       ORDER BY first_step`,
      [num, keyId],
    )
    .then((r) => r.rows);
const tailRows = (num: string, keyId: number) => tailRowCount(t.db.pool, num, keyId);

const range = (from: number, n: number, by = 1) => Array.from({ length: n }, (_, i) => from + i * by);

describe('metric fold: bounded slices, late points, small chunks', () => {
  it('folds a long tail in bounded slices, each its own transaction', async () => {
    const n = 2550;
    const s = await seeded(
      'long',
      cols('long', range(0, n), (x) => Math.sin(x)),
    );
    let slices = 0;
    const moved = await foldKey(t.db.pool, s.num, s.keyId, {
      force: true,
      chunkPoints: 100,
      seal: false,
      beforeTailDelete: async () => void slices++,
    });
    expect(moved).toBe(n);
    // SLICE_CHUNKS chunks of 100 per slice: 2,550 points take ceil(2550 / 800) slices
    expect(slices).toBe(Math.ceil(n / (SLICE_CHUNKS * 100)));
    const rows = await chunks(s.num, s.keyId);
    expect(rows.every((r) => r.count >= 50 && r.count <= 150)).toBe(true);
    expect(rows.reduce((a, r) => a + r.count, 0)).toBe(n);
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.first_step).toBeGreaterThan(rows[i - 1]!.last_step);
    expect(await countStoredPoints(t.db.pool, s.num)).toEqual({ n, distinct: n });
  });

  it('re-encodes only the chunks a late point falls in (before the first, inside, in a gap), not those between', async () => {
    // even steps 100..2098 in ten chunks of 100
    const b = cols('late', range(100, 1000, 2), (x) => x / 7);
    const s = await seeded('late', b);
    await foldKey(t.db.pool, s.num, s.keyId, { chunkPoints: 100, seal: false });
    const before = await chunks(s.num, s.keyId);
    expect(before).toHaveLength(10);
    // step 5 precedes every chunk; 301 lies inside chunk 1; 699 lies in the gap between chunks 2 and 3 (even steps)
    const late = cols('late', [5, 301, 699], (x) => -x);
    await insertMetricPoints(t.db.pool, s.run.id, late, { fold: false });
    expect(await foldKey(t.db.pool, s.num, s.keyId, { chunkPoints: 100, seal: false })).toBe(3);
    const after = await chunks(s.num, s.keyId);
    expect(after).toHaveLength(10);
    const changed = after.filter((r, i) => r.x !== before[i]!.x).map((r) => r.first_step);
    expect(changed).toEqual([5, before[1]!.first_step, before[2]!.first_step]);
    expect(after[2]!.last_step).toBe(699);
    for (let i = 1; i < after.length; i++) expect(after[i]!.first_step).toBeGreaterThan(after[i - 1]!.last_step);
    const p = await readPoints(t.db.pool, s.num, s.keyId, STEP_MIN, STEP_MAX);
    const want = [...b.step, ...late.step].sort((x, y) => x - y);
    expect(p.steps).toEqual(want);
    expect(p.values[0]).toBe(-5);
    expect(p.values[p.steps.indexOf(699)]).toBe(-699);
  });

  it('re-encodes at most SLICE_CHUNKS chunks per slice when late points scatter over many chunks', async () => {
    const b = cols('scatter', range(0, 400, 2), (x) => x);
    const s = await seeded('scatter', b);
    await foldKey(t.db.pool, s.num, s.keyId, { chunkPoints: 10, seal: false });
    expect(await chunks(s.num, s.keyId)).toHaveLength(40);
    // one late (odd) step in each of the 40 chunks: 40 chunks to re-encode, SLICE_CHUNKS per slice
    const late = cols('scatter', range(1, 40, 20), (x) => -x);
    await insertMetricPoints(t.db.pool, s.run.id, late, { fold: false });
    let slices = 0;
    await foldKey(t.db.pool, s.num, s.keyId, {
      chunkPoints: 10,
      seal: false,
      beforeTailDelete: async () => void slices++,
    });
    expect(slices).toBe(Math.ceil(40 / SLICE_CHUNKS));
    const after = await chunks(s.num, s.keyId);
    expect(after).toHaveLength(40);
    for (let i = 1; i < after.length; i++) expect(after[i]!.first_step).toBeGreaterThan(after[i - 1]!.last_step);
    const p = await readPoints(t.db.pool, s.num, s.keyId, STEP_MIN, STEP_MAX);
    expect(p.steps).toEqual([...b.step, ...late.step].sort((x, y) => x - y));
  });

  it('leaves a key whose tail holds a time the codec cannot hold in the tail, and folds the other keys', async () => {
    const { run } = await seedRun(t.db);
    const num = (await t.db.pool.query<{ num: string }>('SELECT num::text AS num FROM run WHERE id = $1', [run.id]))
      .rows[0]!.num;
    const two: PointColumns = {
      keys: ['good', 'bad'],
      key: [...range(0, 300).map(() => 0), ...range(0, 300).map(() => 1)],
      step: [...range(0, 300), ...range(0, 300)],
      value: range(0, 600),
      time: range(0, 600).map(() => T0),
    };
    await insertMetricPoints(t.db.pool, run.id, two, { fold: false });
    // stored before times were bounded: a year no chunk can hold
    await t.db.pool.query(
      `UPDATE metric_point SET wall_time = '4000-01-01 BC' WHERE run_num = $1 AND step = 7
       AND key_id = (SELECT id FROM metric_key WHERE name = 'bad')`,
      [num],
    );
    const ids = await resolveKeyIds(t.db.pool, ['good', 'bad']);
    const moved = await foldKeys(t.db.pool, num, [ids.get('bad')!, ids.get('good')!], {
      force: true,
      chunkPoints: 100,
      seal: false,
    });
    expect(moved).toBe(300);
    expect(await chunks(num, ids.get('bad')!)).toEqual([]);
    expect((await chunks(num, ids.get('good')!)).map((r) => r.count)).toEqual([100, 100, 100]);
    expect(await countStoredPoints(t.db.pool, num)).toEqual({ n: 600, distinct: 600 });
  });

  it('joins fresh points to a short last chunk instead of leaving small chunks behind', async () => {
    const s = await seeded(
      'short',
      cols('short', range(0, 30), (x) => x),
    );
    await foldKey(t.db.pool, s.num, s.keyId, { force: true, chunkPoints: 100 });
    expect((await chunks(s.num, s.keyId)).map((r) => r.count)).toEqual([30]);
    await insertMetricPoints(
      t.db.pool,
      s.run.id,
      cols('short', range(30, 120), (x) => x),
      { fold: false },
    );
    // 150 points waiting with the short chunk: one whole chunk of 100, the other 50 stay in the tail
    expect(await foldKey(t.db.pool, s.num, s.keyId, { chunkPoints: 100, seal: false })).toBe(70);
    expect((await chunks(s.num, s.keyId)).map((r) => [r.first_step, r.count])).toEqual([[0, 100]]);
    expect(await foldKey(t.db.pool, s.num, s.keyId, { force: true, chunkPoints: 100 })).toBe(50);
    // the forced rest (under half a chunk) joins the last chunk
    expect((await chunks(s.num, s.keyId)).map((r) => [r.first_step, r.last_step, r.count])).toEqual([[0, 149, 150]]);
    expect((await readPoints(t.db.pool, s.num, s.keyId, STEP_MIN, STEP_MAX)).steps).toEqual(range(0, 150));
  });
});

describe('metric fold: chunks written by the batch', () => {
  it('chunks the tail and a fresh batch together, all of them, and takes the time of the insert', async () => {
    const { run } = await seedRun(t.db);
    const num = (await t.db.pool.query<{ num: string }>('SELECT num::text AS num FROM run WHERE id = $1', [run.id]))
      .rows[0]!.num;
    const t0 = Date.now();
    // fewer than DIRECT_MIN_POINTS: the tail
    await insertMetricPoints(
      t.db.pool,
      run.id,
      cols('direct', range(0, 60), (x) => x / 3),
    );
    const keyId = (await resolveKeyIds(t.db.pool, ['direct'])).get('direct')!;
    expect(await chunks(num, keyId)).toEqual([]);
    // no times: the server's, as for tail rows
    const untimed = { ...cols('direct', range(60, 1140), (x) => x / 3), time: undefined };
    expect(await insertMetricPoints(t.db.pool, run.id, untimed)).toMatchObject({ inserted: 1140, skipped: 0 });
    const t1 = Date.now();
    // the tail's 60 and the batch's 1,140 as one chunk (a rest of at most half a chunk joins the last one)
    expect((await chunks(num, keyId)).map((r) => [r.first_step, r.last_step, r.count])).toEqual([[0, 1199, 1200]]);
    expect(await tailRows(num, keyId)).toBe(0);
    const p = await readPoints(t.db.pool, num, keyId, STEP_MIN, STEP_MAX);
    expect(p.steps).toEqual(range(0, 1200));
    expect(p.values).toEqual(range(0, 1200).map((x) => x / 3));
    expect(p.times.slice(0, 60)).toEqual(range(0, 60).map((x) => T0 + x));
    for (const ms of p.times.slice(60)) expect(ms >= t0 - 1000 && ms <= t1 + 1000).toBe(true);
    expect(await countStoredPoints(t.db.pool, num)).toEqual({ n: 1200, distinct: 1200 });
    // a batch that reaches back before what is stored (it may hold repeats)
    const back = cols('direct', [...range(1100, 1000), 5], (x) => -x);
    expect(await insertMetricPoints(t.db.pool, run.id, back)).toMatchObject({ inserted: 900, skipped: 101 });
    // its repeats skipped, the rest lies past every chunk: a chunk
    expect((await chunks(num, keyId)).map((r) => r.count)).toEqual([1200, 900]);
    expect(await tailRows(num, keyId)).toBe(0);
    expect(await countStoredPoints(t.db.pool, num)).toEqual({ n: 2100, distinct: 2100 });
  });
  it('writes a batch that arrives late into its gap as a chunk, one that overlaps a chunk to the tail; no chunk spans another', async () => {
    const { run } = await seedRun(t.db);
    const num = (await t.db.pool.query<{ num: string }>('SELECT num::text AS num FROM run WHERE id = $1', [run.id]))
      .rows[0]!.num;
    const part = (from: number, n = 500) => cols('late-first', range(from, n), (x) => x);
    // batches in flight together arrive out of order: the one for 0–499 after 500–1,499 — a chunk of its own
    for (const from of [500, 1000, 0]) await insertMetricPoints(t.db.pool, run.id, part(from));
    const keyId = (await resolveKeyIds(t.db.pool, ['late-first'])).get('late-first')!;
    expect((await chunks(num, keyId)).map((r) => [r.first_step, r.last_step])).toEqual([
      [0, 499],
      [500, 999],
      [1000, 1499],
    ]);
    expect(await tailRows(num, keyId)).toBe(0);
    // late points within a chunk's steps (the odd steps of a chunk of even ones) wait in the tail for a fold; the
    // batch after them is fresh, and becomes a chunk without the tail's late points
    const every2 = (from: number) => cols('late-first', range(from, 250, 2), (x) => x);
    for (const b of [every2(2500), every2(2501), part(3000)]) await insertMetricPoints(t.db.pool, run.id, b);
    expect(await tailRows(num, keyId)).toBe(250);
    expect((await chunks(num, keyId)).map((r) => r.first_step)).toEqual([0, 500, 1000, 2500, 3000]);
    await insertMetricPoints(t.db.pool, run.id, part(2000));
    await insertMetricPoints(t.db.pool, run.id, part(1500));
    await metricFolder(t.db.pool).idle();
    const disjoint = async () => {
      const rows = await chunks(num, keyId);
      for (let i = 1; i < rows.length; i++) expect(rows[i]!.first_step).toBeGreaterThan(rows[i - 1]!.last_step);
    };
    await disjoint();
    expect(await countStoredPoints(t.db.pool, num)).toEqual({ n: 3500, distinct: 3500 });
    await foldKey(t.db.pool, num, keyId, { force: true });
    await disjoint();
    expect(await tailRows(num, keyId)).toBe(0);
    expect((await readPoints(t.db.pool, num, keyId, STEP_MIN, STEP_MAX)).steps).toEqual(range(0, 3500));
  });
  it('gives the same series JSON from chunk summaries as from the points, for any value (widths 64 to 512)', async () => {
    const specials = [0, -0, NaN, Infinity, -Infinity, 3.5e38, -3.5e38, 1e-39, 1.2e-38, 3.4e38, 1e300, 5e-324];
    const b = cols('wire', range(0, 3000), (x, i) =>
      i % 17 === 0 ? specials[(i / 17) % specials.length]! : i % 2 ? Math.fround(Math.sin(x)) : Math.sin(x) * 1e-3 + x,
    );
    const s = await seeded('wire', b);
    const series = () =>
      querySeries(
        t.db.pool,
        [32, 16, 8, 5].map((buckets) => ({ runId: s.run.id, key: 'wire', buckets, minStep: 0, maxStep: 2047 })),
      );
    const before = await series();
    expect(before.map((x) => (x.mode === 'buckets' ? x.width : 0))).toEqual([64, 128, 256, 512]);
    await foldKey(t.db.pool, s.num, s.keyId, { force: true });
    expect(
      await t.db.pool.query('SELECT 1 FROM metric_point WHERE run_num = $1', [s.num]).then((r) => r.rowCount),
    ).toBe(0);
    expect(await series()).toEqual(before);
  });
  it('keeps points of different keys apart at any steps, negative ones included (MLflow steps reach -2^31)', async () => {
    const { run } = await seedRun(t.db);
    const num = (await t.db.pool.query<{ num: string }>('SELECT num::text AS num FROM run WHERE id = $1', [run.id]))
      .rows[0]!.num;
    // (key 0, step 5) and (key 1, step 5 - 2^31) once packed into the same number: the repeat check (a batch
    // whose steps go back) dropped the second
    const b: PointColumns = { keys: ['nx', 'ny'], key: [0, 1, 0], step: [5, 5 - 2 ** 31, 1], value: [1, 2, 3] };
    expect(await insertMetricPoints(t.db.pool, run.id, b)).toMatchObject({ inserted: 3, skipped: 0 });
    // and the count after a conflict took a stored point for the new one it collided with (key ids in a row)
    const ids = await resolveKeyIds(t.db.pool, ['na', 'nb']);
    expect(ids.get('nb')! - ids.get('na')!).toBe(1);
    await insertMetricPoints(t.db.pool, run.id, { keys: ['na'], key: [0], step: [5], value: [1] });
    const mixed: PointColumns = { keys: ['na', 'nb'], key: [0, 1], step: [5, 5 - 2 ** 31], value: [1, 2] };
    expect(await insertMetricPoints(t.db.pool, run.id, mixed)).toMatchObject({ inserted: 1, skipped: 1 });
    expect(await countStoredPoints(t.db.pool, num)).toEqual({ n: 5, distinct: 5 });
    const counts = await t.db.pool.query('SELECT key, count FROM run_metric WHERE run_id = $1 ORDER BY key', [run.id]);
    expect(counts.rows).toEqual([
      { key: 'na', count: 1 },
      { key: 'nb', count: 1 },
      { key: 'nx', count: 2 },
      { key: 'ny', count: 1 },
    ]);
  });
  it('answers a resend into a chunk spanning all of int4 (the dense-chunk check in bigint)', async () => {
    const s = await seeded(
      'span',
      cols('span', [0, 2 ** 31 - 1], (x) => x),
    );
    await foldKey(t.db.pool, s.num, s.keyId, { force: true });
    expect((await chunks(s.num, s.keyId)).map((r) => [r.first_step, r.last_step])).toEqual([[0, 2 ** 31 - 1]]);
    const again = await insertMetricPoints(
      t.db.pool,
      s.run.id,
      cols('span', [0, 5], (x) => x),
    );
    expect(again).toMatchObject({ inserted: 1, skipped: 1 });
  });

  it('gives the same series JSON from summaries as from points at the edge of float32 (±1.2e-38)', async () => {
    const edge = [1.2e-38, -1.2e-38, 1.20000001e-38, 1.19999999e-38, 3.4e38, -3.4e38, 3.40000001e38];
    const s = await seeded(
      'edge',
      cols('edge', range(0, 640), (_, i) => edge[i % edge.length]! * (1 + (i % 3) * 1e-12)),
    );
    const series = () =>
      querySeries(t.db.pool, [{ runId: s.run.id, key: 'edge', buckets: 10, minStep: 0, maxStep: 639 }]);
    const before = await series();
    expect(before[0]!.mode === 'buckets' && before[0]!.width).toBe(64);
    await foldKey(t.db.pool, s.num, s.keyId, { force: true });
    expect(await series()).toEqual(before);
  });
});

describe('metric fold: MLflow history pages', () => {
  it('reads only the chunks a page needs and gives the same page as slicing every point', async () => {
    const b = cols('hist', range(0, 1000, 2), (x) => x * 1.5);
    const s = await seeded('hist', b);
    await foldKey(t.db.pool, s.num, s.keyId, { chunkPoints: 100, seal: false });
    // late points inside chunk ranges, and a tail after the last chunk
    const late = cols('hist', [301, 303, 999, 2000, 2001], (x) => -x);
    await insertMetricPoints(t.db.pool, s.run.id, late, { fold: false });
    const all = await readPoints(t.db.pool, s.num, s.keyId, STEP_MIN, STEP_MAX);
    expect(all.steps).toHaveLength(1005);
    for (const [offset, limit] of [
      [0, 10],
      [95, 10],
      [140, 30],
      [199, 1],
      [450, 100],
      [990, 20],
      [1005, 5],
      [0, 2000],
    ]) {
      const page = await metricHistory(t.db.pool, s.num, 'hist', { offset: offset!, limit: limit! });
      const want = all.steps.slice(offset, offset! + limit!).map((st, i) => ({
        step: st,
        value: all.values[offset! + i],
        t: String(all.times[offset! + i]),
      }));
      expect([offset, page]).toEqual([offset, want]);
    }
  });
});

describe('metric fold: reads while folding', () => {
  it('never shows a point missing or twice to a read that races a fold', async () => {
    const n = 6000;
    const keys = ['ra', 'rb'];
    const steps = range(0, n);
    const b: PointColumns = {
      keys,
      key: [...steps.map(() => 0), ...steps.map(() => 1)],
      step: [...steps, ...steps],
      value: [...steps.map((x) => Math.fround(1 / (1 + x))), ...steps.map((x) => x % 97)],
      time: [...steps, ...steps].map((x) => T0 + x),
    };
    const { run } = await seedRun(t.db);
    const num = (await t.db.pool.query<{ num: string }>('SELECT num::text AS num FROM run WHERE id = $1', [run.id]))
      .rows[0]!.num;
    await insertMetricPoints(t.db.pool, run.id, b, { fold: false });
    const ids = await resolveKeyIds(t.db.pool, keys);
    const reference = await querySeries(t.db.pool, [
      { runId: run.id, key: 'ra', buckets: 100 },
      { runId: run.id, key: 'rb', buckets: 30, minStep: 1000, maxStep: 4000 },
    ]);
    let folding = true;
    const fold = foldKeys(t.db.pool, num, [...ids.values()], { force: true, chunkPoints: 50 }).finally(
      () => (folding = false),
    );
    let reads = 0;
    while (folding || reads < 3) {
      const [p, series] = await Promise.all([
        readPoints(t.db.pool, num, ids.get('ra')!, STEP_MIN, STEP_MAX),
        querySeries(t.db.pool, [
          { runId: run.id, key: 'ra', buckets: 100 },
          { runId: run.id, key: 'rb', buckets: 30, minStep: 1000, maxStep: 4000 },
        ]),
      ]);
      expect(p.steps.length).toBe(n);
      expect(series).toEqual(reference);
      reads++;
    }
    await fold;
    expect(reads).toBeGreaterThan(3);
    expect(await countStoredPoints(t.db.pool, num)).toEqual({ n: 2 * n, distinct: 2 * n });
  });
});
