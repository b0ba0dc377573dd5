import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tailRowCount, useTestDatabase } from './test-db';
import {
  CHUNK_POINTS,
  DIRECT_MIN_POINTS,
  countStoredPoints,
  foldKey,
  foldPending,
  generateExportTar,
  insertMetricPoints,
  metricFolder,
  metricHistory,
  querySeries,
  readPoints,
  readTar,
  resolveKeyIds,
  STEP_MAX,
  setRunStatus,
  STEP_MIN,
  type PointColumns,
} from '../src';
import { curve } from '../src/metric-curves';
import { seedRun } from '../src/testing';

const t = useTestDatabase();

const T0 = 1_750_000_000_000;

/** A loss curve of `n` points from `from` with some NaN, ±Infinity and a spike, as one key's batch. */
function batch(key: string, from: number, n: number, seed = 1): PointColumns {
  const c = curve('loss', { seed, from, count: n, nanRate: 0.01, spikeRate: 0.001, t0: T0 });
  const value = c.values.map((v, i) => (i === 7 ? Infinity : i === 8 ? -Infinity : v));
  return { keys: [key], key: c.steps.map(() => 0), step: c.steps, value, time: c.times };
}

/** `c` cut into batches of `width` steps each (every key's points in those steps). */
function byStep(c: PointColumns, width: number): PointColumns[] {
  const out: PointColumns[] = [];
  const last = Math.max(...c.step);
  for (let lo = 0; lo <= last; lo += width) {
    const rows = c.step.flatMap((s, i) => (s >= lo && s < lo + width ? [i] : []));
    const pick = <T>(col: readonly T[]) => rows.map((i) => col[i]!);
    out.push({ keys: c.keys, key: pick(c.key), step: pick(c.step), value: pick(c.value), time: pick(c.time!) });
  }
  return out;
}

async function setup(key: string, n: number) {
  const { team, project, run } = await seedRun(t.db);
  const num = (await t.db.pool.query<{ num: string }>('SELECT num::text AS num FROM run WHERE id = $1', [run.id]))
    .rows[0]!.num;
  const b = batch(key, 0, n);
  // the fold in the write path is off here: these tests fold by hand, at the moments they choose
  await insertMetricPoints(t.db.pool, run.id, b, { fold: false });
  const keyId = (await resolveKeyIds(t.db.pool, [key])).get(key)!;
  return { team, project, run, num, keyId, b };
}

const chunkRows = (num: string, keyId: number) =>
  t.db.pool
    .query<{ first_step: number; last_step: number; count: number }>(
      'SELECT first_step, last_step, count FROM metric_chunk WHERE run_num = $1 AND key_id = $2 ORDER BY first_step',
      [num, keyId],
    )
    .then((r) => r.rows);
const tailCount = (num: string, keyId: number) => tailRowCount(t.db.pool, num, keyId);

function expectExact(p: { steps: number[]; values: number[]; times: number[] }, b: PointColumns) {
  expect(p.steps).toEqual(b.step);
  expect(p.times).toEqual(b.time);
  expect(p.values.length).toBe(b.value.length);
  for (let i = 0; i < p.values.length; i++) if (!Object.is(p.values[i], b.value[i])) expect([i, p.values[i]]).toBe(0);
}

describe('metric chunks: fold and read', () => {
  it('folds whole chunks in one go, leaves the partial rest in the tail, and reads the same points after', async () => {
    const s = await setup('loss', 3500);
    const reads = async () => ({
      zoom: await querySeries(t.db.pool, [
        { runId: s.run.id, key: 'loss', buckets: 2000, minStep: 1200, maxStep: 2900 },
      ]),
      buckets: await querySeries(t.db.pool, [{ runId: s.run.id, key: 'loss', buckets: 100, withTimes: true }]),
      fine: await querySeries(t.db.pool, [{ runId: s.run.id, key: 'loss', buckets: 200, minStep: 0, maxStep: 3000 }]),
      history: await metricHistory(t.db.pool, s.num, 'loss', { limit: 700, offset: 2600 }),
    });
    const before = await reads();
    expect(await foldKey(t.db.pool, s.num, s.keyId)).toBe(3000);
    expect(await chunkRows(s.num, s.keyId)).toEqual([
      { first_step: 0, last_step: 999, count: 1000 },
      { first_step: 1000, last_step: 1999, count: 1000 },
      { first_step: 2000, last_step: 2999, count: 1000 },
    ]);
    expect(await tailCount(s.num, s.keyId)).toBe(500);
    expect(await foldKey(t.db.pool, s.num, s.keyId)).toBe(0); // idempotent: less than a chunk waits
    expectExact(await readPoints(t.db.pool, s.num, s.keyId, STEP_MIN, STEP_MAX), s.b);
    expect(await reads()).toEqual(before);
    expect(before.zoom[0]!.mode).toBe('raw');
    expect(before.fine[0]!.mode).toBe('buckets'); // narrower than the rollups: aggregated from decoded points
    expect(await foldKey(t.db.pool, s.num, s.keyId, { force: true })).toBe(500);
    expect(await tailCount(s.num, s.keyId)).toBe(0);
    expect(await reads()).toEqual(before);
    expect(await countStoredPoints(t.db.pool, s.num)).toEqual({ n: 3500, distinct: 3500 });
  });

  it('aggregates narrow buckets from decoded points exactly as Postgres did from rows (float32 JSON, NaN, ±Inf)', async () => {
    const s = await setup('narrow', 5000);
    const odd = {
      keys: ['narrow'],
      key: [0, 0, 0, 0],
      step: [5000, 5001, 5002, 5003],
      value: [1e-40, 3e39, -0.1, NaN],
    };
    await insertMetricPoints(t.db.pool, s.run.id, odd);
    const f4 = (c: string) =>
      `CASE WHEN ${c} = 0 OR abs(${c}) BETWEEN 1.2e-38 AND 3.4e38 THEN to_json(${c}::float4) ELSE to_json(${c}) END`;
    const w = 8;
    const ref = await t.db.pool.query<{ j: string }>(
      `SELECT json_build_object('steps', json_agg(b * ${w} ORDER BY b), 'count', json_agg(count ORDER BY b),
         'nan', json_agg(nan ORDER BY b), 'min', json_agg(${f4('min')} ORDER BY b), 'max', json_agg(${f4('max')} ORDER BY b),
         'first', json_agg(${f4('first')} ORDER BY b), 'last', json_agg(${f4('last')} ORDER BY b))::text AS j
       FROM (SELECT step / ${w} AS b, count(*) AS count, count(*) FILTER (WHERE value = 'NaN') AS nan,
               min(value) FILTER (WHERE value <> 'NaN') AS min, max(value) FILTER (WHERE value <> 'NaN') AS max,
               (array_agg(value ORDER BY step))[1] AS first, (array_agg(value ORDER BY step DESC))[1] AS last
             FROM metric_point WHERE run_num = $1 AND key_id = $2 AND step BETWEEN 3000 AND 5007 GROUP BY 1) q`,
      [s.num, s.keyId],
    );
    const expected = JSON.parse(ref.rows[0]!.j) as Record<string, unknown>;
    await foldKey(t.db.pool, s.num, s.keyId, { force: true });
    const [got] = await querySeries(t.db.pool, [{ runId: s.run.id, key: 'narrow', buckets: 300, minStep: 3000 }]);
    expect(got).toMatchObject({ mode: 'buckets', width: w, ...expected });
  });

  it('stores a batch re-sent after its points were folded once, with rollups unchanged', async () => {
    const s = await setup('loss', 2000);
    const rollups = () =>
      t.db.pool
        .query('SELECT width, sum(count)::int AS n FROM metric_rollup WHERE run_num = $1 GROUP BY 1 ORDER BY 1', [
          s.num,
        ])
        .then((r) => r.rows);
    const r0 = await rollups();
    await foldKey(t.db.pool, s.num, s.keyId);
    expect(await tailCount(s.num, s.keyId)).toBe(0);
    const again = await insertMetricPoints(t.db.pool, s.run.id, s.b);
    expect(again).toMatchObject({ inserted: 0, skipped: 2000 });
    // half old, half new: only the new half is stored
    const mixed = batch('loss', 1000, 2000);
    expect(await insertMetricPoints(t.db.pool, s.run.id, mixed)).toMatchObject({ inserted: 1000, skipped: 1000 });
    expect(await countStoredPoints(t.db.pool, s.num)).toEqual({ n: 3000, distinct: 3000 });
    expect((await rollups()).every((r) => r.n === 3000)).toBe(true);
    expect(r0.every((r) => r.n === 2000)).toBe(true);
  });

  it('merges a late point inside a folded range into its chunk, keeping ranges disjoint', async () => {
    const { run } = await seedRun(t.db);
    const even = {
      keys: ['x'],
      key: [] as number[],
      step: [] as number[],
      value: [] as number[],
      time: [] as number[],
    };
    for (let i = 0; i < 2000; i++)
      Object.values(even)
        .slice(1)
        .forEach((a, j) => (a as number[]).push([0, 2 * i, i / 3, T0 + i][j]!));
    await insertMetricPoints(t.db.pool, run.id, even);
    const num = (await t.db.pool.query('SELECT num::text AS num FROM run WHERE id = $1', [run.id])).rows[0].num;
    const keyId = (await resolveKeyIds(t.db.pool, ['x'])).get('x')!;
    await foldKey(t.db.pool, num, keyId);
    const late = { keys: ['x'], key: [0, 0], step: [501, 2501], value: [NaN, -1], time: [T0, T0] };
    expect(await insertMetricPoints(t.db.pool, run.id, late)).toMatchObject({ inserted: 2 });
    const zoom = await readPoints(t.db.pool, num, keyId, 499, 503);
    expect(zoom.steps).toEqual([500, 501, 502]);
    expect(zoom.values[1]).toBeNaN();
    await foldKey(t.db.pool, num, keyId, { force: true });
    const rows = await chunkRows(num, keyId);
    expect(rows.reduce((a, r) => a + r.count, 0)).toBe(2002);
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.first_step).toBeGreaterThan(rows[i - 1]!.last_step);
    expect(await tailCount(num, keyId)).toBe(0);
    expect((await readPoints(t.db.pool, num, keyId, 2500, 2502)).values).toEqual([1250 / 3, -1, 1251 / 3]);
    expect(await insertMetricPoints(t.db.pool, run.id, late)).toMatchObject({ inserted: 0, skipped: 2 });
  });

  it('exports the same metrics lines before and after a fold', async () => {
    const s = await setup('acc', 2500);
    const metricsOf = async () => {
      const out: string[] = [];
      const tar = generateExportTar(t.db.pool, s.team.id, { projectId: s.project.id });
      for await (const f of readTar(tar)) if (f.name.includes('/metrics/')) out.push(f.content.toString());
      return out.join('');
    };
    const before = await metricsOf();
    expect(before.split('\n').filter(Boolean)).toHaveLength(2500);
    await foldKey(t.db.pool, s.num, s.keyId, { force: true });
    expect(await metricsOf()).toBe(before);
  });
});

describe('metric chunks: crashes and races', () => {
  const child = (args: string[]) =>
    spawn(process.execPath, ['--import', 'tsx', resolve(import.meta.dirname, 'fold-child.ts'), t.url, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  const waitFor = (p: ReturnType<typeof child>, word: string) =>
    new Promise<void>((res, rej) => {
      let out = '';
      p.stdout!.on('data', (d: Buffer) => (out += d.toString()).includes(word) && res());
      p.once('exit', (code) => rej(new Error(`fold child exited ${code} before "${word}"`)));
    });
  const killed = (p: ReturnType<typeof child>) => {
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    return gone;
  };

  it('loses and duplicates nothing when the folding process is killed inside the fold transaction', async () => {
    const s = await setup('loss', 2500);
    const p = child(['mid', s.num, String(s.keyId)]);
    await waitFor(p, 'mid'); // chunks inserted, tail rows not yet deleted, transaction open
    await killed(p);
    // the server notices the dead connection and rolls its transaction back
    for (let i = 0; i < 50 && (await chunkRows(s.num, s.keyId)).length; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(await chunkRows(s.num, s.keyId)).toEqual([]);
    expect(await countStoredPoints(t.db.pool, s.num)).toEqual({ n: 2500, distinct: 2500 });
    expect(await foldKey(t.db.pool, s.num, s.keyId, { force: true })).toBe(2500);
    expectExact(await readPoints(t.db.pool, s.num, s.keyId, STEP_MIN, STEP_MAX), s.b);
  });

  it('loses and duplicates nothing when a folding loop is killed at random moments', async () => {
    const { run } = await seedRun(t.db);
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    const n = 1000;
    const cols: PointColumns = { keys, key: [], step: [], value: [], time: [] };
    for (let k = 0; k < keys.length; k++)
      for (let i = 0; i < n; i++) {
        (cols.key as number[]).push(k);
        (cols.step as number[]).push(i);
        (cols.value as number[]).push(k + i / n);
        (cols.time as number[]).push(T0 + i);
      }
    await insertMetricPoints(t.db.pool, run.id, cols, { fold: false });
    const num = (await t.db.pool.query('SELECT num::text AS num FROM run WHERE id = $1', [run.id])).rows[0].num;
    for (let round = 0; round < 4; round++) {
      const p = child(['loop']);
      await waitFor(p, 'go');
      await new Promise((r) => setTimeout(r, 100 + Math.random() * 400));
      await killed(p);
      expect(await countStoredPoints(t.db.pool, num)).toEqual({ n: keys.length * n, distinct: keys.length * n });
    }
    await foldPending(t.db.pool, { chunkPoints: 100 });
    expect(await t.db.pool.query('SELECT 1 FROM metric_point WHERE run_num = $1', [num]).then((r) => r.rowCount)).toBe(
      0,
    );
    const ids = await resolveKeyIds(t.db.pool, keys);
    const p = await readPoints(t.db.pool, num, ids.get('k7')!, STEP_MIN, STEP_MAX);
    expect(p.values).toEqual(Array.from({ length: n }, (_, i) => 7 + i / n));
    // the loop sealed too (four 100-point chunks into one), and was killed at random moments of that as well
    expect((await chunkRows(num, ids.get('k7')!)).map((r) => r.count)).toEqual([400, 400, 100, 100]);
  });

  it('stores each point once when a fold races a late retry of an old batch', async () => {
    for (let round = 0; round < 15; round++) {
      const s = await setup(`race-${round}`, CHUNK_POINTS * 2 + 10);
      const [, retry] = await Promise.all([
        foldKey(t.db.pool, s.num, s.keyId, { force: round % 2 === 0 }),
        insertMetricPoints(t.db.pool, s.run.id, s.b),
      ]);
      expect(retry).toMatchObject({ inserted: 0, skipped: s.b.step.length });
      expect(await countStoredPoints(t.db.pool, s.num)).toEqual({ n: 2010, distinct: 2010 });
      const roll = await t.db.pool.query<{ n: number }>(
        'SELECT sum(count)::int AS n FROM metric_rollup WHERE run_num = $1 AND width = 1024',
        [s.num],
      );
      expect(roll.rows[0]!.n).toBe(2010);
    }
  });

  it('AFT_METRIC_FOLD=write folds in the write path when a chunk fills, and the rest when the run ends', async () => {
    const { run, team } = await seedRun(t.db);
    const num = (await t.db.pool.query('SELECT num::text AS num FROM run WHERE id = $1', [run.id])).rows[0].num;
    const keyId = (await resolveKeyIds(t.db.pool, ['auto'])).get('auto')!;
    const b = batch('auto', 0, CHUNK_POINTS + 300);
    // two keys in one batch, both filling a chunk: folded together (foldKeys), each exactly
    const b2 = batch('auto2', 0, CHUNK_POINTS + 100, 2);
    const two: PointColumns = {
      keys: ['auto', 'auto2'],
      key: [...b.key, ...b2.key.map(() => 1)],
      step: [...b.step, ...b2.step],
      value: [...b.value, ...b2.value],
      time: [...b.time!, ...b2.time!],
    };
    process.env['AFT_METRIC_FOLD'] = 'write';
    try {
      // batches under DIRECT_MIN_POINTS a key, so the points go through the tail
      for (const part of byStep(two, DIRECT_MIN_POINTS / 2)) await insertMetricPoints(t.db.pool, run.id, part);
    } finally {
      delete process.env['AFT_METRIC_FOLD'];
    }
    const keyId2 = (await resolveKeyIds(t.db.pool, ['auto2'])).get('auto2')!;
    expect(await chunkRows(num, keyId)).toEqual([{ first_step: 0, last_step: CHUNK_POINTS - 1, count: CHUNK_POINTS }]);
    expect(await chunkRows(num, keyId2)).toEqual([{ first_step: 0, last_step: CHUNK_POINTS - 1, count: CHUNK_POINTS }]);
    expect(await tailCount(num, keyId)).toBe(300);
    expect(await tailCount(num, keyId2)).toBe(100);
    await setRunStatus(t.db.pool, run.id, team.id, 'succeeded');
    await metricFolder(t.db.pool).idle();
    expect(await tailCount(num, keyId)).toBe(0);
    expect(await tailCount(num, keyId2)).toBe(0);
    expectExact(await readPoints(t.db.pool, num, keyId, STEP_MIN, STEP_MAX), b);
    expectExact(await readPoints(t.db.pool, num, keyId2, STEP_MIN, STEP_MAX), b2);

    const off = await seedRun(t.db);
    const offNum = (await t.db.pool.query('SELECT num::text AS num FROM run WHERE id = $1', [off.run.id])).rows[0].num;
    process.env['AFT_METRIC_FOLD'] = '0';
    try {
      await insertMetricPoints(t.db.pool, off.run.id, b);
      await setRunStatus(t.db.pool, off.run.id, off.team.id, 'failed');
    } finally {
      delete process.env['AFT_METRIC_FOLD'];
    }
    expect(await chunkRows(offNum, keyId)).toEqual([]);
    expect(await tailCount(offNum, keyId)).toBe(CHUNK_POINTS + 300);
  });

  it('by default writes a batch’s fresh points as chunks straight away, folds small batches’ in the background', async () => {
    await metricFolder(t.db.pool).idle(); // nothing of an earlier test still folding
    const { run, team } = await seedRun(t.db);
    const num = (await t.db.pool.query('SELECT num::text AS num FROM run WHERE id = $1', [run.id])).rows[0].num;
    const b = batch('ends', 0, 2100);
    const part = (from: number, to: number): PointColumns => ({
      keys: b.keys,
      key: b.key.slice(from, to),
      step: b.step.slice(from, to),
      value: b.value.slice(from, to),
      time: b.time!.slice(from, to),
    });
    await insertMetricPoints(t.db.pool, run.id, part(0, 1000));
    const keyId = (await resolveKeyIds(t.db.pool, ['ends'])).get('ends')!;
    // a batch of fresh points: written as a chunk by the request itself
    expect(await chunkRows(num, keyId)).toEqual([{ first_step: 0, last_step: 999, count: 1000 }]);
    expect(await tailCount(num, keyId)).toBe(0);
    // batches under DIRECT_MIN_POINTS go to the tail; the one that fills a chunk queues a background fold, which
    // starts only after the request has answered (a macrotask later: the count read at once sees the tail whole)
    const small = DIRECT_MIN_POINTS / 2;
    for (let from = 1000; from < 2000; from += small)
      await insertMetricPoints(t.db.pool, run.id, part(from, from + small));
    expect(await tailCount(num, keyId)).toBe(1000);
    await metricFolder(t.db.pool).idle();
    expect(await tailCount(num, keyId)).toBe(0);
    // a rest of 100 fresh points: a chunk of its own
    await insertMetricPoints(t.db.pool, run.id, part(2000, 2100));
    expect(await tailCount(num, keyId)).toBe(0);
    expect((await chunkRows(num, keyId)).map((r) => r.count)).toEqual([1000, 1000, 100]);
    await setRunStatus(t.db.pool, run.id, team.id, 'succeeded');
    await metricFolder(t.db.pool).idle();
    // the run's end sealed its chunks into one (metric-seal.ts)
    expect(await chunkRows(num, keyId)).toEqual([{ first_step: 0, last_step: 2099, count: 2100 }]);
    expectExact(await readPoints(t.db.pool, num, keyId, STEP_MIN, STEP_MAX), b);
    // a batch sent again stores nothing twice
    expect(await insertMetricPoints(t.db.pool, run.id, part(0, 1300))).toMatchObject({ inserted: 0, skipped: 1300 });
  });
});
