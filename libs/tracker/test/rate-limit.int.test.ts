import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countPoints, createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createRedis, createTeamWithKey, createTestHandler, RedisRateLimiter, serveFetch } from '@aft/api/testing';
import { init } from '../src';

let t: TestDatabase;
let api: ReturnType<typeof createTestHandler>;
const redis = createRedis('redis://127.0.0.1:6379', 'worker');
let key: string;

beforeAll(async () => {
  t = await createTestDatabase();
  const limiter = new RedisRateLimiter(redis, 1000, `aft:rate-test-${randomBytes(4).toString('hex')}`);
  api = createTestHandler(t.db, t.url, null, null, limiter);
  key = (await createTeamWithKey(t.db, 'busy-sdk')).key;
});
afterAll(async () => {
  await api?.notifier.close();
  redis.disconnect();
  await t?.drop();
});

describe('the SDK against a rate-limited server (1,000 points a second per key)', () => {
  it('waits as told by Retry-After and stores every point once', async () => {
    const server = await serveFetch(api.handler);
    try {
      const run = await init({ project: 'p', url: server.url, apiKey: key, batchPoints: 500, finishOnExit: false });
      for (let s = 0; s < 3000; s++) await run.log({ loss: 1 / (s + 1) }, s);
      const t0 = Date.now();
      await run.finish();
      expect(Date.now() - t0).toBeGreaterThan(900); // it had to wait for at least one new window
      expect(await countPoints(t.db, run.id)).toEqual({ n: 3000, distinct: 3000 });
    } finally {
      await server.close();
    }
  });
});
