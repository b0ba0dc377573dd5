/**
 * Sealing (libs/db/src/metric-seal.ts): a key's small chunks merged into chunks of SEALED_POINTS, by the sweep
 * as a live run grows and at its end; exact through it, and never a point missing or twice for a reader meanwhile.
 */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from './test-db';
import {
  CHUNK_POINTS,
  countStoredPoints,
  encodeSummary,
  foldKeys,
  foldPending,
  foldRun,
  pendingWork,
  insertMetricPoints,
  metricFolder,
  querySeries,
  readPoints,
  resolveKeyIds,
  SEALED_POINTS,
  sealGroups,
  sealKeys,
  setRunStatus,
  STEP_MAX,
  STEP_MIN,
  withTransaction,
  writeChunks,
  type PointColumns,
} from '../src';
import { seedRun } from '../src/testing';

const t = useTestDatabase();

const T0 = 1_750_000_000_000;

/** Steps [from, from + n) of keys `a` and `b`, as a trainer's batch interleaves them. */
function batch(from: number, n: number, value = (k: number, s: number) => Math.fround(k + Math.sin(s / 50))) {
  const b: PointColumns = { keys: ['a', 'b'], key: [], step: [], value: [], time: [] };
  for (let s = from; s < from + n; s++)
    for (const k of [0, 1]) {
      (b.key as number[]).push(k);
      (b.step as number[]).push(s);
      (b.value as number[]).push(s === 777 ? NaN : value(k, s));
      (b.time as number[]).push(T0 + 5 * s);
    }
  return b;
}

const chunkRows = (num: string, keyId: number) =>
  t.db.pool
    .query<{ first_step: number; last_step: number; count: number; summary: Buffer; x: string }>(
      `SELECT first_step, last_step, count, summary, xmin::text AS x FROM metric_chunk
       WHERE run_num = $1 AND key_id = $2 ORDER BY first_step`,
      [num, keyId],
    )
    .then((r) => r.rows);

async function live() {
  const s = await seedRun(t.db);
  const num = (await t.db.pool.query<{ num: string }>('SELECT num::text AS num FROM run WHERE id = $1', [s.run.id]))
    .rows[0]!.num;
  return { ...s, num };
}

describe('sealGroups', () => {
  const S = 4000;
  it('gathers consecutive small chunks until they hold a sealed chunk, skipping big ones', () => {
    expect(sealGroups([1000, 1000, 1000, 1000, 1000], false, true, S).groups).toEqual([[0, 1, 2, 3]]);
    expect(sealGroups([4000, 1000, 1500, 1500, 500], false, false, S)).toEqual({ groups: [[1, 2, 3]], open: [4] });
    // small chunks before a bigger one cannot grow: merged at once; those at a live key's end wait for its end
    expect(sealGroups([1000, 1000, 5000, 1000], false, true, S)).toEqual({ groups: [[0, 1]], open: [3] });
    expect(sealGroups([1000, 1000, 5000, 1000], true, true, S).groups).toEqual([
      [0, 1],
      [2, 3],
    ]);
    // chunks over half a sealed chunk are left as they are, so a merge stays under 1.5 × sealed
    expect(sealGroups([3999, 3999, 2100, 4000, 2100], true, true, S).groups).toEqual([]);
    expect(sealGroups([2000, 2000, 2000, 2000], true, true, S).groups).toEqual([
      [0, 1],
      [2, 3],
    ]);
  });

  it('at a run end, merges the rest or joins it to the chunk before when it holds at most half a sealed chunk', () => {
    expect(sealGroups(Array(10).fill(1000), true, true, S).groups).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7, 8, 9],
    ]);
    expect(sealGroups(Array(11).fill(1000), true, true, S).groups).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9, 10],
    ]);
    // a 5,500-point chunk and a 1,000-point rest would pass 1.5 × sealed: the rest stays alone
    expect(sealGroups([5500, 1000], true, true, S).groups).toEqual([]);
    expect(sealGroups([4000, 1000, 500], true, true, S).groups).toEqual([[0, 1, 2]]);
    // not at the key's end (a page of headers): the open gathering waits for the next page
    expect(sealGroups([1000, 1000], true, false, S)).toEqual({ groups: [], open: [0, 1] });
  });
});

describe('sealing', () => {
  it('seals a live run in the sweep and the rest at its end; exact, with summaries of the merged points', async () => {
    const { run, team, num } = await live();
    const all = batch(0, 10 * CHUNK_POINTS + 300);
    const part = (from: number, to: number): PointColumns => ({
      ...all,
      key: all.key.slice(2 * from, 2 * to),
      step: all.step.slice(2 * from, 2 * to),
      value: all.value.slice(2 * from, 2 * to),
      time: all.time!.slice(2 * from, 2 * to),
    });
    for (let from = 0; from < 10 * CHUNK_POINTS; from += CHUNK_POINTS)
      await insertMetricPoints(t.db.pool, run.id, part(from, from + CHUNK_POINTS));
    await insertMetricPoints(t.db.pool, run.id, part(10 * CHUNK_POINTS, 10 * CHUNK_POINTS + 300));
    await metricFolder(t.db.pool).idle();
    const ids = await resolveKeyIds(t.db.pool, ['a', 'b']);
    const a = ids.get('a')!;
    // written as chunks by each batch (the last one short); the sweep seals a live run's whole sealed chunks' worth
    expect((await chunkRows(num, a)).map((r) => r.count)).toEqual([...Array(10).fill(CHUNK_POINTS), 300]);
    await foldPending(t.db.pool);
    expect((await chunkRows(num, a)).map((r) => r.count)).toEqual([SEALED_POINTS, SEALED_POINTS, 1000, 1000, 300]);
    await setRunStatus(t.db.pool, run.id, team.id, 'succeeded');
    await metricFolder(t.db.pool).idle();
    const rows = await chunkRows(num, a);
    // the end: the 2,300 after the sealed chunks are merged (more than half a sealed chunk, so they do not join the
    // one before)
    expect(rows.map((r) => [r.first_step, r.last_step, r.count])).toEqual([
      [0, 3999, 4000],
      [4000, 7999, 4000],
      [8000, 10_299, 2300],
    ]);
    expect(await countStoredPoints(t.db.pool, num)).toEqual({ n: all.key.length, distinct: all.key.length });
    for (const [k, key] of ['a', 'b'].entries()) {
      const p = await readPoints(t.db.pool, num, ids.get(key)!, STEP_MIN, STEP_MAX);
      const want = all.value.filter((_, i) => all.key[i] === k);
      expect(p.steps).toEqual(all.step.filter((_, i) => all.key[i] === k));
      expect(p.values.map(String)).toEqual(want.map(String));
      expect(p.times).toEqual(all.time!.filter((_, i) => all.key[i] === k));
    }
    for (const r of rows) {
      const p = await readPoints(t.db.pool, num, a, r.first_step, r.last_step);
      expect(r.summary.equals(encodeSummary(p.steps, p.values))).toBe(true);
    }
    // a narrow series over sealed chunks reads their summaries: every point counted, the NaN at step 777 too
    const [s] = await querySeries(t.db.pool, [{ runId: run.id, key: 'a', buckets: 200, minStep: 0, maxStep: 10_299 }]);
    expect(s).toMatchObject({ mode: 'buckets', width: 64 });
    if (s?.mode !== 'buckets') throw new Error('buckets');
    expect(s.count.reduce((x, y) => x + y, 0)).toBe(10_300);
    expect(s.nan.reduce((x, y) => x + y, 0)).toBe(1);
  });

  it('a late point re-encodes its sealed chunk whole, not cut back into fold-sized pieces', async () => {
    const { run, team, num } = await live();
    const b = batch(0, 8000, (k, s) => k + 2 * s);
    // even steps only, so odd ones are late points inside the chunks
    const even: PointColumns = {
      ...b,
      key: b.key.filter((_, i) => b.step[i]! % 2 === 0),
      step: b.step.filter((s) => s % 2 === 0),
      value: b.value.filter((_, i) => b.step[i]! % 2 === 0),
      time: b.time!.filter((_, i) => b.step[i]! % 2 === 0),
    };
    await insertMetricPoints(t.db.pool, run.id, even);
    await setRunStatus(t.db.pool, run.id, team.id, 'succeeded');
    await metricFolder(t.db.pool).idle();
    const a = (await resolveKeyIds(t.db.pool, ['a'])).get('a')!;
    const before = await chunkRows(num, a);
    expect(before.map((r) => r.count)).toEqual([4000]);
    await insertMetricPoints(t.db.pool, run.id, {
      keys: ['a'],
      key: [0, 0],
      step: [1, 4001],
      value: [-1, -2],
      time: [T0, T0],
    });
    await foldRun(t.db.pool, num, { force: true, seal: false });
    const after = await chunkRows(num, a);
    expect(after.map((r) => [r.first_step, r.last_step, r.count])).toEqual([[0, 7998, 4002]]);
    const p = await readPoints(t.db.pool, num, a, 0, 5);
    expect([p.steps, p.values]).toEqual([
      [0, 1, 2, 4],
      [0, -1, 4, 8],
    ]);
  });

  it('keeps chunks that late points grow within 1.5 × a sealed chunk, and a forced fold keeps a sealed last chunk whole', async () => {
    const { run, team, num } = await live();
    // 4,000 points 100 steps apart, sealed at the run's end
    const base = Array.from({ length: 4000 }, (_, i) => i * 100);
    const pts = (steps: number[], value: (s: number) => number): PointColumns => ({
      keys: ['a'],
      key: steps.map(() => 0),
      step: steps,
      value: steps.map(value),
      time: steps.map((s) => T0 + s),
    });
    await insertMetricPoints(
      t.db.pool,
      run.id,
      pts(base, (s) => s),
    );
    await setRunStatus(t.db.pool, run.id, team.id, 'succeeded');
    await metricFolder(t.db.pool).idle();
    const a = (await resolveKeyIds(t.db.pool, ['a'])).get('a')!;
    expect((await chunkRows(num, a)).map((r) => r.count)).toEqual([4000]);
    // a backfill of 12,000 steps in between, a fold after each batch: chunks are cut at a sealed chunk's size, where
    // they once grew by half each fold, without bound
    for (let off = 1; off <= 3; off++)
      for (let b = 0; b < 4; b++) {
        const late = base.slice(b * 1000, (b + 1) * 1000).map((s) => s + off);
        await insertMetricPoints(
          t.db.pool,
          run.id,
          pts(late, (s) => -s),
          { fold: false },
        );
        await foldRun(t.db.pool, num, { seal: false });
      }
    const grown = await chunkRows(num, a);
    // (the 3 steps past the last chunk's end wait in the tail: they fill no chunk)
    expect(grown.reduce((x, r) => x + r.count, 0)).toBe(16_000 - 3);
    expect(Math.max(...grown.map((r) => r.count))).toBeLessThanOrEqual(1.5 * SEALED_POINTS);
    expect(await countStoredPoints(t.db.pool, num)).toEqual({ n: 16_000, distinct: 16_000 });
    // two steps more, folded with the run's rest: they and the 3 join the sealed last chunk, which stays one chunk
    const last = grown.at(-1)!;
    await insertMetricPoints(
      t.db.pool,
      run.id,
      pts([last.last_step + 10, last.last_step + 20], (s) => s),
      {
        fold: false,
      },
    );
    await foldRun(t.db.pool, num, { force: true, seal: false });
    const after = await chunkRows(num, a);
    expect(after.length).toBe(grown.length);
    expect(after.at(-1)!.count).toBe(last.count + 3 + 2);
  });

  it('leaves the sweep nothing to do once an ended run is sealed, however late points cut its chunks', async () => {
    const { run, team, num } = await live();
    const only = (b: PointColumns, keep: (step: number) => boolean): PointColumns => ({
      ...b,
      key: b.key.filter((_, i) => keep(b.step[i]!)),
      step: b.step.filter(keep),
      value: b.value.filter((_, i) => keep(b.step[i]!)),
      time: b.time!.filter((_, i) => keep(b.step[i]!)),
    });
    await insertMetricPoints(
      t.db.pool,
      run.id,
      only(batch(0, 16_000), (s) => s % 2 === 0),
    );
    await setRunStatus(t.db.pool, run.id, team.id, 'succeeded');
    await metricFolder(t.db.pool).idle();
    const a = (await resolveKeyIds(t.db.pool, ['a'])).get('a')!;
    expect((await chunkRows(num, a)).map((r) => r.count)).toEqual([4000, 4000]);
    // 2,100 late odd steps into each of the sealed chunks: each cut into a sealed chunk and a rest of 2,100
    await insertMetricPoints(
      t.db.pool,
      run.id,
      only(batch(0, 16_000), (s) => s % 2 === 1 && s % 8000 < 4200),
      { fold: false },
    );
    await foldRun(t.db.pool, num, { force: true });
    expect((await chunkRows(num, a)).map((r) => r.count)).toEqual([4000, 2100, 4000, 2100]);
    expect((await pendingWork(t.db.pool)).filter((w) => w.run_num === num)).toEqual([]);
  });

  it('merges a page of tiny chunks (a full page of headers under a sealed chunk), and the sweep is then done', async () => {
    const { run, team, num } = await live();
    await insertMetricPoints(t.db.pool, run.id, batch(0, 1500), { fold: false });
    const ids = [...(await resolveKeyIds(t.db.pool, ['a', 'b'])).values()];
    // 300 chunks of 5 points, as a fold with a tiny chunk size (or an old store) leaves them
    await foldKeys(t.db.pool, num, ids, { force: true, chunkPoints: 5, seal: false });
    expect((await chunkRows(num, ids[0]!)).length).toBe(300);
    await setRunStatus(t.db.pool, run.id, team.id, 'succeeded');
    await metricFolder(t.db.pool).idle();
    expect((await chunkRows(num, ids[0]!)).map((r) => r.count)).toEqual([1500]);
    expect((await pendingWork(t.db.pool)).filter((w) => w.run_num === num)).toEqual([]);
    expect(await countStoredPoints(t.db.pool, num)).toEqual({ n: 3000, distinct: 3000 });
  });

  it('picks a live key for the sweep only when sealing has something to do', async () => {
    const layout = async (counts: number[]) => {
      const { run, num } = await live();
      const keyId = (await resolveKeyIds(t.db.pool, ['a'])).get('a')!;
      let step = 0;
      const made = counts.map((n) => {
        const steps = Array.from({ length: n }, () => step++);
        return { keyId, p: { steps, values: steps.map((s) => s / 3), times: steps.map((s) => T0 + s) } };
      });
      await withTransaction(t.db.pool, (c) => writeChunks(c, num, [], made));
      await t.db.pool.query("UPDATE run SET status = 'running' WHERE id = $1", [run.id]);
      return num;
    };
    const picked = async (num: string) => (await pendingWork(t.db.pool)).some((w) => w.run_num === num);
    // lone small chunks that cannot join their neighbours, and a pair at the end still filling: nothing to do
    expect(await picked(await layout([5000, 1500, 5000, 1500, 5000, 1000, 1000]))).toBe(false);
    // a pair before a bigger chunk, or small chunks at the end holding a sealed chunk: work
    expect(await picked(await layout([5000, 1000, 1000, 5000]))).toBe(true);
    expect(await picked(await layout([5000, 1000, 1000, 1000, 1000]))).toBe(true);
  });

  it('never shows a reader a point missing or twice while chunks are sealed', async () => {
    const { run, num } = await live();
    const b = batch(0, 6 * CHUNK_POINTS);
    await insertMetricPoints(t.db.pool, run.id, b, { fold: false });
    const ids = await resolveKeyIds(t.db.pool, ['a', 'b']);
    // fold-sized chunks only, so the reads below race a seal of each key
    await foldKeys(t.db.pool, num, [...ids.values()], { seal: false });
    expect((await chunkRows(num, ids.get('a')!)).length).toBe(6);
    let sealing = true;
    const reads = (async () => {
      let n = 0;
      while (sealing || n === 0) {
        const p = await readPoints(t.db.pool, num, ids.get('a')!, STEP_MIN, STEP_MAX);
        expect(p.steps.length).toBe(6 * CHUNK_POINTS);
        expect(new Set(p.steps).size).toBe(6 * CHUNK_POINTS);
        n++;
      }
      return n;
    })();
    const merged = await sealKeys(t.db.pool, num, [...ids.values()], { final: true });
    sealing = false;
    expect(await reads).toBeGreaterThan(0);
    expect(merged).toBe(12);
    expect((await chunkRows(num, ids.get('a')!)).map((r) => r.count)).toEqual([6000]);
    // sealing again finds nothing to do
    expect(await sealKeys(t.db.pool, num, [...ids.values()], { final: true })).toBe(0);
  });
});
