import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countPoints, createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createTeamWithKey, createTestHandler, serveFetch } from '@aft/api/testing';
import { init, TrackerError } from '../src';

let t: TestDatabase;
let key: string;
let api: ReturnType<typeof createTestHandler>;
let server: Awaited<ReturnType<typeof serveFetch>>;

beforeAll(async () => {
  t = await createTestDatabase();
  key = (await createTeamWithKey(t.db, 'sdk')).key;
  api = createTestHandler(t.db, t.url);
  server = await serveFetch(api.handler);
});
afterAll(async () => {
  await server?.close();
  await api?.notifier.close();
  await t?.drop();
});

const stored = (runId: string) => countPoints(t.db, runId);

describe('tracker SDK', () => {
  it('logs metrics, samples, artifacts and a summary, then finishes', async () => {
    const run = await init({
      url: server.url,
      apiKey: key,
      project: 'sdk-test',
      config: { lr: 3e-4 },
      tags: ['t'],
      finishOnExit: false,
    });
    for (let step = 0; step < 1200; step++) void run.log({ loss: 1 / (step + 1), acc: step / 1200 }, step);
    run.log({ loss: NaN }, 1200);
    run.logSamples([{ step: 0, questionId: 'q1', prompt: 'p', completion: 'c', correct: true, score: -0.3 }]);
    await run.logArtifact({ kind: 'checkpoint', name: 'final', uri: 'file:///tmp/x', bytes: 10 });
    await run.setSummary({ acc: 0.5, ppl: Infinity });
    await run.finish();
    expect((await stored(run.id)).n).toBe(2401);
    const row = await t.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } });
    expect(row.status).toBe('succeeded');
    expect(row.summary).toEqual({ acc: 0.5, ppl: 'Infinity' });
    expect(row.tags).toEqual(['t']);
    expect(await t.db.prisma.sample.count({ where: { runId: run.id } })).toBe(1);
    expect(() => run.log({ loss: 1 }, 5)).toThrow(/finished/);
  });

  it('rejects bad input at the call site', async () => {
    const run = await init({ url: server.url, apiKey: key, project: 'sdk-test', finishOnExit: false });
    expect(() => run.log({ loss: 1 }, -1)).toThrow(/step must be an integer/);
    expect(() => run.log({ loss: 'x' as unknown as number }, 1)).toThrow(/must be a number/);
    expect(() => run.log({ '': 1 }, 1)).toThrow(/metric key/);
    await run.finish();
  });

  it('retries through a server that is down and answers 503, storing every point exactly once', async () => {
    // a flaky proxy in front of the API: answers 503 to the first requests (server down), then fails every third
    // *after* the API stored it (the client sees an error and resends the same batch)
    let requests = 0;
    const flaky = await serveFetch(async (req) => {
      requests++;
      if (requests <= 3) return new Response('down for maintenance', { status: 503 });
      const res = await api.handler(req);
      if (req.url.includes('metrics.log') && requests % 3 === 0)
        return new Response('gateway lost it', { status: 502 });
      return res;
    });
    const retries: number[] = [];
    const run = await init({
      url: flaky.url,
      apiKey: key,
      project: 'sdk-flaky',
      batchPoints: 500,
      finishOnExit: false,
      onRetry: (_e, attempt) => retries.push(attempt),
    });
    for (let step = 0; step < 10_000; step++) await run.log({ loss: Math.sin(step) }, step);
    await run.finish();
    await flaky.close();
    expect(retries.length).toBeGreaterThan(3);
    expect(await stored(run.id)).toEqual({ n: 10_000, distinct: 10_000 });
  });

  it('does not retry a request the server refuses, and reports it', async () => {
    await expect(
      init({ url: server.url, apiKey: 'aft_bad_key', project: 'x', finishOnExit: false }),
    ).rejects.toMatchObject({
      status: 401,
    });
    const e = await init({ url: server.url, apiKey: key, project: '', finishOnExit: false }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TrackerError);
    expect((e as TrackerError).status).toBe(400);
    expect((e as TrackerError).message).toMatch(/project/);
  });
});
