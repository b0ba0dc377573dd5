/** The metric store's own vacuums (libs/db/src/metric-vacuum.ts), at thresholds a test reaches. */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from './test-db';
import {
  CHUNK_POINTS,
  DIRECT_MIN_POINTS,
  createDb,
  insertMetricPoints,
  metricVacuumsDone,
  resolveKeyIds,
  sealKeys,
  tailVacuumRows,
  type Db,
} from '../src';
import { seedRun } from '../src/testing';

process.env['AFT_METRIC_TAIL_VACUUM_ROWS'] = '2500';
process.env['AFT_METRIC_CHUNK_VACUUM_ROWS'] = '16';
process.env['AFT_METRIC_ROLLUP_VACUUM_ROWS'] = '60';

const t = useTestDatabase();

/** A pool of its own: what a process counts towards its vacuums is per pool, so each test starts from nothing. */
async function ownPool<T>(f: (db: Db) => Promise<T>): Promise<T> {
  const db = createDb({ connectionString: t.url, max: 3 });
  try {
    return await f(db);
  } finally {
    await metricVacuumsDone(db.pool);
    await db.close();
  }
}

const vacuums = async (table: string) =>
  (
    await t.db.pool.query<{ n: number }>('SELECT vacuum_count::int AS n FROM pg_stat_user_tables WHERE relname = $1', [
      table,
    ])
  ).rows[0]!.n;

/** Steps [from, from + n) of `keys`, as a trainer's batch holds them. */
const batch = (from: number, n: number, keys = ['v']) => {
  const step = Array.from({ length: n * keys.length }, (_, i) => from + Math.floor(i / keys.length));
  return { keys, key: step.map((_, i) => i % keys.length), step, value: step.map((s) => s / 7) };
};

describe('metric vacuums', () => {
  it('takes a threshold only as a whole number from 1 to 10^9: anything else is the default, not a vacuum a batch', () => {
    const was = process.env['AFT_METRIC_TAIL_VACUUM_ROWS'];
    try {
      for (const bad of ['abc', '0', '-5', '2.5', '1e12', '']) {
        process.env['AFT_METRIC_TAIL_VACUUM_ROWS'] = bad;
        expect([bad, tailVacuumRows()]).toEqual([bad, 250_000]);
      }
    } finally {
      process.env['AFT_METRIC_TAIL_VACUUM_ROWS'] = was;
    }
  });

  it('vacuums the tail once its folds have deleted TAIL_VACUUM_ROWS rows, not before', () =>
    ownPool(async ({ pool }) => {
      expect(tailVacuumRows()).toBe(2500);
      const { run } = await seedRun(t.db);
      const before = await vacuums('metric_point');
      // batches under DIRECT_MIN_POINTS: too few to be written as a chunk straight away (metric-direct.ts), so they
      // go through the tail
      const n = DIRECT_MIN_POINTS / 2;
      const perChunk = CHUNK_POINTS / n;
      // every perChunk-th batch fills a chunk, folded in the write path (asked for: AFT_METRIC_FOLD=write's): 1,000
      // tail rows deleted
      for (let b = 0; b < 2 * perChunk; b++) await insertMetricPoints(pool, run.id, batch(b * n, n), { fold: true });
      await metricVacuumsDone(pool);
      expect(await vacuums('metric_point')).toBe(before);
      for (let b = 2 * perChunk; b < 3 * perChunk; b++)
        await insertMetricPoints(pool, run.id, batch(b * n, n), { fold: true });
      await metricVacuumsDone(pool);
      expect(await vacuums('metric_point')).toBe(before + 1);
    }));

  it('vacuums the chunks once sealing has merged away AFT_METRIC_CHUNK_VACUUM_ROWS of them', () =>
    ownPool(async ({ pool }) => {
      const { run } = await seedRun(t.db);
      const num = (await t.db.pool.query('SELECT num::text AS num FROM run WHERE id = $1', [run.id])).rows[0].num;
      const keys = ['a', 'b', 'c'];
      // four chunks of each key, written by the batches themselves
      for (let b = 0; b < 4; b++) await insertMetricPoints(pool, run.id, batch(b * CHUNK_POINTS, CHUNK_POINTS, keys));
      const ids = [...(await resolveKeyIds(t.db.pool, keys)).values()];
      const before = await vacuums('metric_chunk');
      expect(await sealKeys(pool, num, ids)).toBe(12);
      await metricVacuumsDone(pool);
      expect(await vacuums('metric_chunk')).toBe(before);
      for (let b = 4; b < 8; b++) await insertMetricPoints(pool, run.id, batch(b * CHUNK_POINTS, CHUNK_POINTS, keys));
      expect(await sealKeys(pool, num, ids)).toBe(12);
      await metricVacuumsDone(pool);
      expect(await vacuums('metric_chunk')).toBe(before + 1);
    }));

  it('vacuums the rollups once batches have written AFT_METRIC_ROLLUP_VACUUM_ROWS of their rows', () =>
    ownPool(async ({ pool }) => {
      const { run } = await seedRun(t.db);
      const before = await vacuums('metric_rollup');
      // one key, 100 steps a batch: each batch writes one rollup row at each of the 7 widths
      for (let b = 0; b < 8; b++) await insertMetricPoints(pool, run.id, batch(b * 100, 100));
      await metricVacuumsDone(pool);
      expect(await vacuums('metric_rollup')).toBe(before);
      for (let b = 8; b < 10; b++) await insertMetricPoints(pool, run.id, batch(b * 100, 100));
      await metricVacuumsDone(pool);
      expect(await vacuums('metric_rollup')).toBe(before + 1);
    }));
});
