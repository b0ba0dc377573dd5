import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countStoredPoints,
  foldKey,
  foldKeys,
  insertMetricPoints,
  metricHistory,
  querySeries,
  readPoints,
  resolveKeyIds,
  SLICE_CHUNKS,
  STEP_MAX,
  STEP_MIN,
  type PointColumns,
} from '../src';
import { createTestDatabase, seedRun, type TestDatabase } from '../src/testing';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});

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
    await foldKey(t.db.pool, s.num, s.keyId, { chunkPoints: 100 });
    const before = await chunks(s.num, s.keyId);
    expect(before).toHaveLength(10);
    // step 5 precedes every chunk; 301 lies inside chunk 1; 699 lies in the gap between chunks 2 and 3 (even steps)
    const late = cols('late', [5, 301, 699], (x) => -x);
    await insertMetricPoints(t.db.pool, s.run.id, late, { fold: false });
    expect(await foldKey(t.db.pool, s.num, s.keyId, { chunkPoints: 100 })).toBe(3);
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
    expect(await foldKey(t.db.pool, s.num, s.keyId, { chunkPoints: 100 })).toBe(70);
    expect((await chunks(s.num, s.keyId)).map((r) => [r.first_step, r.count])).toEqual([[0, 100]]);
    expect(await foldKey(t.db.pool, s.num, s.keyId, { force: true, chunkPoints: 100 })).toBe(50);
    // the forced rest (under half a chunk) joins the last chunk
    expect((await chunks(s.num, s.keyId)).map((r) => [r.first_step, r.last_step, r.count])).toEqual([[0, 149, 150]]);
    expect((await readPoints(t.db.pool, s.num, s.keyId, STEP_MIN, STEP_MAX)).steps).toEqual(range(0, 150));
  });
});

describe('metric fold: MLflow history pages', () => {
  it('reads only the chunks a page needs and gives the same page as slicing every point', async () => {
    const b = cols('hist', range(0, 1000, 2), (x) => x * 1.5);
    const s = await seeded('hist', b);
    await foldKey(t.db.pool, s.num, s.keyId, { chunkPoints: 100 });
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
