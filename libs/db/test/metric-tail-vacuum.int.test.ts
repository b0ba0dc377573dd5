/** The folds' own vacuum of the tail (libs/db/src/metric-chunks.ts, tailVacuumRows), at a threshold a test reaches. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNK_POINTS, insertMetricPoints, tailVacuumDone, tailVacuumRows } from '../src';
import { createTestDatabase, seedRun, type TestDatabase } from '../src/testing';

process.env['AFT_METRIC_TAIL_VACUUM_ROWS'] = '2500';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});

const vacuums = async () =>
  (
    await t.db.pool.query<{ n: number }>(
      "SELECT vacuum_count::int AS n FROM pg_stat_user_tables WHERE relname = 'metric_point'",
    )
  ).rows[0]!.n;

describe('tail vacuum', () => {
  it('vacuums the tail once its folds have deleted TAIL_VACUUM_ROWS rows, not before', async () => {
    expect(tailVacuumRows()).toBe(2500);
    const { run } = await seedRun(t.db);
    const before = await vacuums();
    // batches of a quarter chunk: too few to be written as a chunk straight away (metric-direct.ts), so they go
    // through the tail
    const n = CHUNK_POINTS / 4;
    const batch = (from: number) => {
      const step = Array.from({ length: n }, (_, i) => from + i);
      return { keys: ['v'], key: step.map(() => 0), step, value: step.map((s) => s / 7) };
    };
    // every fourth batch fills a chunk, folded in the write path (asked for: AFT_METRIC_FOLD=write's): 1,000 tail
    // rows deleted
    for (let b = 0; b < 8; b++) await insertMetricPoints(t.db.pool, run.id, batch(b * n), { fold: true });
    await tailVacuumDone(t.db.pool);
    expect(await vacuums()).toBe(before);
    for (let b = 8; b < 12; b++) await insertMetricPoints(t.db.pool, run.id, batch(b * n), { fold: true });
    await tailVacuumDone(t.db.pool);
    expect(await vacuums()).toBe(before + 1);
  });
});
