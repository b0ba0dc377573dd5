import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packPoints } from '@aft/contracts';
import { createTestDatabase, storedPoints, type TestDatabase } from '@aft/db/testing';
import { createTeamWithKey, createTestHandler } from '../src/testing';

let t: TestDatabase;
let api: ReturnType<typeof createTestHandler>;
let key: string;

beforeAll(async () => {
  t = await createTestDatabase();
  api = createTestHandler(t.db, t.url);
  key = (await createTeamWithKey(t.db, `packed-${Date.now().toString(36)}`)).key;
});
afterAll(async () => {
  await api?.notifier.close();
  await t?.drop();
});

async function newRun() {
  const r = await api.call('runs.create', { project: 'packed' }, { key });
  expect(r.status).toBe(200);
  return (r.json.result!.data as { id: string }).id;
}
const show = (v: number) => (Object.is(v, -0) ? '-0' : String(v));

describe('metrics.log in binary columns (what the SDK sends)', () => {
  it('stores every value and time exactly as logged, and a batch sent twice once', async () => {
    const runId = await newRun();
    // a chunk's worth of one key (the direct-to-chunk path) and a few points of another (the tail)
    const n = 1200;
    const key0 = Array.from({ length: n }, () => 0);
    const odd = [NaN, Infinity, -Infinity, -0, 0.1 + 0.2, Number.MAX_VALUE, 5e-324, -Number.MIN_VALUE];
    const cols = {
      keys: ['loss', 'grad_norm'],
      key: [...key0, 1, 1, 1],
      step: [...key0.map((_, i) => i), 0, 5, 9],
      value: [...key0.map((_, i) => odd[i % odd.length]! * (i % 3 === 0 ? 1 : Math.exp(-i / 500))), NaN, 2, -0],
      time: [...key0.map((_, i) => 1_700_000_000_000 + 7 * i), 1, 2, 3],
    };
    const packed = packPoints(cols);
    const a = await api.call('metrics.log', { runId, packed }, { key });
    expect(a.status).toBe(200);
    expect(a.json.result?.data).toMatchObject({ inserted: n + 3, skipped: 0 });
    const b = await api.call('metrics.log', { runId, packed }, { key });
    expect(b.json.result?.data).toMatchObject({ inserted: 0, skipped: n + 3 });

    const stored = await storedPoints(t.db, { runId });
    const expected = cols.key
      .map((k, i) => ({ key: cols.keys[k]!, step: cols.step[i]!, value: show(cols.value[i]!), time: cols.time[i]! }))
      .sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : x.step - y.step));
    expect(stored.map((p) => ({ key: p.key, step: p.step, value: show(p.value), time: p.time }))).toEqual(expected);
  });

  it('refuses a malformed column with a 400 naming the column and entry, storing nothing', async () => {
    const runId = await newRun();
    const packed = packPoints({ keys: ['loss'], key: [0, 0, 0], step: [1, 2, 3], value: [1, 2, 3] });
    const badKey = { ...packed, key: Buffer.from([0, 0, 0, 1, 0, 0]).toString('base64') };
    const r1 = await api.call('metrics.log', { runId, packed: badKey }, { key });
    expect(r1.status).toBe(400);
    expect(r1.json.error?.message).toMatch(/packed\.key\.1: key index 1 is not an index into keys \(1 keys\)/);
    const r2 = await api.call('metrics.log', { runId, packed: { ...packed, value: 'AAAA' } }, { key });
    expect(r2.status).toBe(400);
    expect(r2.json.error?.message).toMatch(/packed\.value: must be base64 of 3 × 8 bytes/);
    const r3 = await api.call('metrics.log', { runId, packed: { ...packed, n: 'three' } }, { key });
    expect(r3.status).toBe(400);
    expect(r3.json.error?.message).toMatch(/packed\.n/);
    expect(await storedPoints(t.db, { runId })).toEqual([]);
  });
});
