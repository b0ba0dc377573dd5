/**
 * The metric store against a model: random batches (appends, resent batches, backfills into gaps, out of order),
 * chunks written by the batch, background and forced folds, in random order. After every step each point is
 * stored exactly once and a key's chunks cover disjoint step ranges; at the end every key reads back its model.
 */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from './test-db';
import {
  countStoredPoints,
  foldKeys,
  insertMetricPoints,
  metricFolder,
  readPoints,
  resolveKeyIds,
  STEP_MAX,
  STEP_MIN,
  type PointColumns,
} from '../src';
import { seedRun } from '../src/testing';

const t = useTestDatabase();

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('metric store against a model', () => {
  it.each([1, 2, 3])('stores every point once and reads it back, seed %i', async (seed) => {
    const r = rng(seed);
    const int = (n: number) => Math.floor(r() * n);
    const { run } = await seedRun(t.db);
    const num = (await t.db.pool.query<{ num: string }>('SELECT num::text AS num FROM run WHERE id = $1', [run.id]))
      .rows[0]!.num;
    const keys = ['a', 'b', 'c'];
    const model = new Map(keys.map((k) => [k, new Map<number, number>()]));
    const next = new Map(keys.map((k) => [k, 0]));
    const sent: PointColumns[] = [];
    const check = async (what: string) => {
      const size = [...model.values()].reduce((a, m) => a + m.size, 0);
      expect([what, await countStoredPoints(t.db.pool, num)]).toEqual([what, { n: size, distinct: size }]);
      const rows = await t.db.pool.query<{ key_id: number; first_step: number; last_step: number }>(
        'SELECT key_id, first_step, last_step FROM metric_chunk WHERE run_num = $1 ORDER BY key_id, first_step',
        [num],
      );
      for (let i = 1; i < rows.rows.length; i++) {
        const [a, b] = [rows.rows[i - 1]!, rows.rows[i]!];
        if (a.key_id === b.key_id) expect([what, b.first_step > a.last_step]).toEqual([what, true]);
      }
    };
    for (let op = 0; op < 40; op++) {
      const kind = r();
      if (kind < 0.12 && sent.length) {
        // a batch sent again (its response was lost)
        await insertMetricPoints(t.db.pool, run.id, sent[int(sent.length)]!);
        await check(`op ${op}: resend`);
        continue;
      }
      if (kind < 0.22) {
        await foldKeys(t.db.pool, num, [...(await resolveKeyIds(t.db.pool, keys)).values()], { force: r() < 0.5 });
        await check(`op ${op}: fold`);
        continue;
      }
      const b = { keys, key: [] as number[], step: [] as number[], value: [] as number[], time: [] as number[] };
      for (const [k, key] of keys.entries()) {
        if (r() < 0.3) continue;
        const n = [50, 400, 600, 1200, 2500][int(5)]!;
        // even steps appended; odd ones now and then, into gaps already covered (a backfill)
        const backfill = kind > 0.85 && next.get(key)! > 10;
        for (let i = 0; i < n; i++) {
          const step = backfill ? 2 * int(next.get(key)! / 2) + 1 : next.get(key)! + 2 * i;
          const value = r() < 0.01 ? NaN : Math.fround(r());
          b.key.push(k);
          b.step.push(step);
          b.value.push(value);
          b.time.push(1_750_000_000_000 + step);
        }
        if (!backfill) next.set(key, next.get(key)! + 2 * n);
      }
      if (!b.key.length) continue;
      // points in batch order as a trainer sends them, interleaved across keys; occasionally shuffled
      if (r() < 0.2)
        for (let i = b.key.length - 1; i > 0; i--) {
          const j = int(i + 1);
          for (const col of [b.key, b.step, b.value, b.time]) [col[i], col[j]] = [col[j]!, col[i]!];
        }
      // a repeat within the batch keeps its first value, a point stored before keeps its value
      b.key.forEach((k, i) => {
        const m = model.get(keys[k]!)!;
        if (!m.has(b.step[i]!)) m.set(b.step[i]!, b.value[i]!);
      });
      sent.push(b);
      await insertMetricPoints(t.db.pool, run.id, b);
      await check(`op ${op}: batch of ${b.key.length}`);
    }
    await metricFolder(t.db.pool).idle();
    await check('after the background folds');
    const ids = await resolveKeyIds(t.db.pool, keys);
    for (const key of keys) {
      const p = await readPoints(t.db.pool, num, ids.get(key)!, STEP_MIN, STEP_MAX);
      const want = [...model.get(key)!].sort((x, y) => x[0] - y[0]);
      expect(p.steps).toEqual(want.map((w) => w[0]));
      expect(p.values.map((v) => (Number.isNaN(v) ? 'NaN' : v))).toEqual(
        want.map((w) => (Number.isNaN(w[1]) ? 'NaN' : w[1])),
      );
    }
  });
});
