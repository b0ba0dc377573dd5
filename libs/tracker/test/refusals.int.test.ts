/**
 * What the SDK does with input the server will not store: a bad sample is refused at the call, naming it; a batch
 * the server refuses is reported once (by the next flush, or to `onError`) and later batches are stored as usual;
 * only transient failures are retried. Against the real API over HTTP.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from '@aft/contracts';
import { countPoints, createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createTeamWithKey, createTestHandler, serveFetch } from '@aft/api/testing';
import { init, Transport, TrackerError } from '../src';

let t: TestDatabase;
let key: string;
let api: ReturnType<typeof createTestHandler>;
let server: Awaited<ReturnType<typeof serveFetch>>;

beforeAll(async () => {
  t = await createTestDatabase();
  key = (await createTeamWithKey(t.db, `refusals-${randomBytes(4).toString('hex')}`)).key;
  api = createTestHandler(t.db, t.url);
  server = await serveFetch(api.handler);
});
afterAll(async () => {
  await server?.close();
  await api?.notifier.close();
  await t?.drop();
});

const sample = (questionId: string, completion = '#### 4') => ({
  step: 1,
  questionId,
  prompt: 'What is 2+2?',
  completion,
});

/** A fetch that counts the requests whose body mentions `needle`. */
function counting(needle: string) {
  const seen = { n: 0 };
  const f: typeof fetch = (input, init) => {
    if (typeof init?.body === 'string' && init.body.includes(needle)) seen.n++;
    return fetch(input, init);
  };
  return { fetch: f, seen };
}

describe('refused input', () => {
  it('a sample with a NUL is refused at the call, once; what is logged after it is all stored, and finish succeeds', async () => {
    const run = await init({ url: server.url, apiKey: key, project: 'sdk-nul', finishOnExit: false });
    for (let s = 0; s < 100; s++) void run.log({ loss: 1 / (s + 1) }, s);
    expect(() => run.logSamples([sample('q1'), sample('q2', 'four\u0000')])).toThrow(
      /sample 1: completion: must not contain a NUL character/,
    );
    run.logSamples([sample('q3'), sample('q4', 'emoji 😀 fine')]);
    for (let s = 100; s < 200; s++) void run.log({ loss: 1 / (s + 1) }, s);
    await run.flush();
    await run.finish();

    expect(await countPoints(t.db, run.id)).toEqual({ n: 200, distinct: 200 });
    const samples = await t.db.prisma.sample.findMany({ where: { runId: run.id }, select: { questionId: true } });
    expect(samples.map((s) => s.questionId).sort()).toEqual(['q3', 'q4']);
    expect((await t.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).status).toBe('succeeded');
  });

  it('a batch the server refuses is sent once, reported by the next flush only, and later batches are stored', async () => {
    const { fetch: f, seen } = counting('one-too-many');
    const run = await init({ url: server.url, apiKey: key, project: 'sdk-cap', finishOnExit: false, fetch: f });
    const keys = Array.from({ length: LIMITS.metricKeysPerRun }, (_, i) => `m${i}`);
    void run.log(Object.fromEntries(keys.map((k) => [k, 1])), 0);
    await run.flush();

    // the run's key cap is reached: the server refuses a batch with a new key (400)
    void run.log({ 'one-too-many': 1 }, 1);
    const err = await run.flush().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrackerError);
    expect((err as TrackerError).status).toBe(400);
    expect((err as TrackerError).message).toMatch(/1 points of run \S+ were not stored: .*at most 1,000/);
    expect(seen.n).toBe(1);
    await run.flush(); // reported once: not again

    for (let s = 2; s < 12; s++) void run.log({ m0: s, m1: -s }, s);
    await run.finish();
    expect((await countPoints(t.db, run.id)).n).toBe(LIMITS.metricKeysPerRun + 20);
    expect((await t.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).status).toBe('succeeded');
  });

  it('with onError, a refused batch goes to the handler once and flush never throws', async () => {
    const errors: TrackerError[] = [];
    const run = await init({
      url: server.url,
      apiKey: key,
      project: 'sdk-onerror',
      finishOnExit: false,
      onError: (e) => errors.push(e),
    });
    void run.log(Object.fromEntries(Array.from({ length: LIMITS.metricKeysPerRun }, (_, i) => [`k${i}`, 1])), 0);
    await run.flush();
    void run.log({ extra: 1 }, 1);
    await run.flush();
    void run.log({ k0: 2 }, 2);
    await run.finish();
    expect(errors).toHaveLength(1);
    expect(errors[0]!.status).toBe(400);
    expect((await countPoints(t.db, run.id)).n).toBe(LIMITS.metricKeysPerRun + 1);
  });
});

describe('what is retried', () => {
  /** A batch the stand-in servers below never read: they answer every request alike. */
  const batch = { runId: 'r-any', points: [{ key: 'loss', step: 0, value: 1 }] };
  /** A stand-in server answering `status` to every request, counting them. */
  async function answering(status: number) {
    const hits = { n: 0 };
    const s = await serveFetch(async () => {
      hits.n++;
      return new Response(JSON.stringify({ error: { message: `status ${status}`, data: { code: 'X' } } }), { status });
    });
    return { s, hits };
  }

  it('a refusal (400) or 501 is sent once; a 500 only for the short server-error budget; a 503 longer', async () => {
    for (const [status, attempts] of [
      [400, 1],
      [404, 1],
      [501, 1],
    ] as const) {
      const { s, hits } = await answering(status);
      const tr = new Transport({ url: s.url, apiKey: key, retryForMs: 5_000 });
      await expect(tr.call('metrics.log', batch)).rejects.toMatchObject({ status });
      expect(hits.n).toBe(attempts);
      await s.close();
    }
    const five = await answering(500);
    const started = Date.now();
    const tr = new Transport({ url: five.s.url, apiKey: key, retryForMs: 60_000, retryServerErrorForMs: 1_000 });
    await expect(tr.call('metrics.log', batch)).rejects.toMatchObject({ status: 500 });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(five.hits.n).toBeGreaterThan(1);
    await five.s.close();

    const busy = await answering(503);
    const retries: number[] = [];
    const tr2 = new Transport({ url: busy.s.url, apiKey: key, retryForMs: 1_500, onRetry: (_e, a) => retries.push(a) });
    await expect(tr2.call('metrics.log', batch)).rejects.toMatchObject({ status: 503 });
    expect(retries.length).toBeGreaterThan(1);
    await busy.s.close();
  });

  it('a network failure is retried and the batch stored once', async () => {
    let failed = 0;
    const flaky: typeof fetch = (input, init) => {
      if (String(input).includes('metrics.log') && failed++ < 2) return Promise.reject(new Error('socket hang up'));
      return fetch(input, init);
    };
    const run = await init({ url: server.url, apiKey: key, project: 'sdk-net', finishOnExit: false, fetch: flaky });
    for (let s = 0; s < 50; s++) void run.log({ loss: s }, s);
    await run.finish();
    expect(await countPoints(t.db, run.id)).toEqual({ n: 50, distinct: 50 });
  });
});
