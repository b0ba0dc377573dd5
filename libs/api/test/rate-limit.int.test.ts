import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countPoints, createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { RunNotifier } from '@aft/db';
import { createRedis } from '@aft/queue';
import { createApiHandler, RedisRateLimiter } from '../src';
import { createTeamWithKey } from '../src/testing';

const LIMIT = 1000;
let t: TestDatabase;
let notifier: RunNotifier;
const redis = createRedis('redis://127.0.0.1:6379', 'worker');
let handler: (req: Request) => Promise<Response>;
let key: string;

beforeAll(async () => {
  t = await createTestDatabase();
  notifier = new RunNotifier(t.url);
  // a 4-second window (4,000 points) keeps the test clear of window edges on a slow machine
  const limiter = new RedisRateLimiter(redis, LIMIT, `aft:rate-test-${randomBytes(4).toString('hex')}`, 4000);
  handler = createApiHandler({ db: t.db, notifier, auth: null, rateLimiter: limiter });
  key = (await createTeamWithKey(t.db, 'busy')).key;
});
afterAll(async () => {
  await notifier?.close();
  redis.disconnect();
  await t?.drop();
});

const post = (path: string, body: unknown, k: string | null = key) =>
  handler(
    new Request(`http://test/api/trpc/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(k ? { 'x-api-key': k } : {}) },
      body: JSON.stringify(body),
    }),
  );
const points = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({ key: 'loss', step: from + i, value: 1 / (from + i + 1) }));

describe('ingestion rate per key', () => {
  it('answers 429 with Retry-After once a key writes more than its rate in a second, and lets it in again after', async () => {
    const run = (await (await post('runs.create', { project: 'p' })).json()) as { result: { data: { id: string } } };
    const runId = run.result.data.id;
    // start at the beginning of a window, so both batches land in it
    await new Promise((r) => setTimeout(r, 4000 - (Date.now() % 4000) + 5));
    expect((await post('metrics.log', { runId, points: points(3000) })).status).toBe(200);
    const over = await post('metrics.log', { runId, points: points(3000, 3000) });
    expect(over.status).toBe(429);
    const wait = Number(over.headers.get('retry-after'));
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(4);
    expect(((await over.json()) as { error: { message: string } }).error.message).toMatch(
      new RegExp(`over its ingestion rate of 1,000 points or samples a second; retry after ${wait} s`),
    );
    await new Promise((r) => setTimeout(r, wait * 1000 + 50));
    expect((await post('metrics.log', { runId, points: points(3000, 3000) })).status).toBe(200);
    expect((await countPoints(t.db, runId)).n).toBe(6000);
  });
});
