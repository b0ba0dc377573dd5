/**
 * Limits that hold against hostile requests: bodies counted in bytes as they stream (not by Content-Length),
 * tRPC batch size, points read per request, a statement timeout that answers 503, the per-run cap on metric keys,
 * and bounded trainer settings at launch.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from '@aft/contracts';
import { createDb, insertMetricPoints, MAX_METRIC_KEYS_PER_RUN, MetricKeyCapError } from '@aft/db';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createRedis, dropTestQueues, JobProducer, testQueueName } from '@aft/queue';
import { bodyLimited, createApiHandler, createMlflowHandler } from '../src';
import { createTeamWithKey, createTestHandler } from '../src/testing';

let t: TestDatabase;
let api: ReturnType<typeof createTestHandler>;
let producer: JobProducer;
let key: string;
const dir = mkdtempSync(join(tmpdir(), 'aft-limits-'));
const suffix = Math.random().toString(36).slice(2, 8);

beforeAll(async () => {
  t = await createTestDatabase();
  producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), testQueueName());
  api = createTestHandler(t.db, t.url, null, producer);
  key = (await createTeamWithKey(t.db, `limits-${suffix}`)).key;
});
afterAll(async () => {
  await dropTestQueues(producer);
  await api?.notifier.close();
  await t?.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** A body of `total` bytes sent in 64 KiB chunks with no Content-Length, counting what the server pulls. */
function chunkedBody(total: number, chunk = 64 * 1024) {
  const state = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (state.pulled >= total) return c.close();
      const n = Math.min(chunk, total - state.pulled);
      state.pulled += n;
      c.enqueue(new Uint8Array(n).fill(0x20));
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state, chunk };
}

const streamed = (
  url: string,
  body: ReadableStream<Uint8Array>,
  method = 'POST',
  headers: Record<string, string> = {},
) => new Request(url, { method, body, duplex: 'half', headers: { 'x-api-key': key, ...headers } } as RequestInit);

async function newRun() {
  const r = await api.call('runs.create', { project: `p-${suffix}`, config: {} }, { key });
  expect(r.status).toBe(200);
  return (r.json.result!.data as { id: string }).id;
}

describe('request bodies are counted in bytes as they stream', () => {
  it('tRPC: a 9 MB chunked body without Content-Length gets 413 naming the limit, not read to its end', async () => {
    const handler = createApiHandler({ db: t.db, notifier: api.notifier, auth: null });
    const limit = 8 * 1024 * 1024;
    const body = chunkedBody(9 * 1024 * 1024);
    const res = await handler(
      streamed('http://test/api/trpc/metrics.log', body.stream, 'POST', { 'content-type': 'application/json' }),
    );
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/limit of 8,388,608 bytes/);
    // the server stopped pulling within a few chunks of the limit and cancelled the stream
    expect(body.state.pulled).toBeLessThanOrEqual(limit + 4 * body.chunk);
    expect(body.state.cancelled).toBe(true);
  });

  it('MLflow: a chunked JSON body and a chunked artifact over their limits get 413, nothing written', async () => {
    const mlflow = createMlflowHandler({
      db: t.db,
      notifier: api.notifier,
      auth: null,
      artifactDir: dir,
      maxBodyBytes: 100_000,
      maxArtifactBytes: 200_000,
    });
    const post = (path: string, body: unknown) =>
      mlflow(
        new Request(`http://test/api/2.0/mlflow/${path}`, {
          method: 'POST',
          headers: { 'x-api-key': key, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }),
      ).then(async (r) => ({ status: r.status, json: (await r.json()) as Record<string, unknown> }));
    const exp = await post('experiments/create', { name: `e-${suffix}` });
    expect(exp.status).toBe(200);
    const experimentId = exp.json['experiment_id'] as string;
    const run = await post('runs/create', { experiment_id: experimentId });
    const runId = (run.json['run'] as { info: { run_id: string } }).info.run_id;

    const json = chunkedBody(1024 * 1024);
    const r1 = await mlflow(
      streamed('http://test/api/2.0/mlflow/runs/log-batch', json.stream, 'POST', {
        'content-type': 'application/json',
      }),
    );
    expect(r1.status).toBe(413);
    expect(((await r1.json()) as { message: string }).message).toMatch(
      /request body is over the limit of 100,000 bytes/,
    );
    expect(json.state.pulled).toBeLessThan(1024 * 1024);
    expect(json.state.cancelled).toBe(true);

    const file = chunkedBody(1024 * 1024);
    const url = `http://test/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${runId}/artifacts/big.bin`;
    const r2 = await mlflow(streamed(url, file.stream, 'PUT'));
    expect(r2.status).toBe(413);
    expect(((await r2.json()) as { message: string }).message).toMatch(/artifact is over the limit of 200,000 bytes/);
    expect(file.state.pulled).toBeLessThan(1024 * 1024);
    expect(readdirSync(dir, { recursive: true }).filter((f) => String(f).includes('big.bin'))).toEqual([]);
  });

  it('a handler wrapped in bodyLimited (the sign-in routes) gets 413 and never sees the request', async () => {
    let seen = 0;
    const handler = bodyLimited(async () => {
      seen++;
      return new Response('ok');
    }, 64 * 1024);
    const body = chunkedBody(1024 * 1024);
    const res = await handler(streamed('http://test/api/auth/sign-in/email', body.stream));
    expect(res.status).toBe(413);
    expect(((await res.json()) as { message: string }).message).toMatch(/limit of 65,536 bytes/);
    expect(seen).toBe(0);
    const ok = await handler(new Request('http://test/api/auth/sign-in/email', { method: 'POST', body: '{}' }));
    expect(ok.status).toBe(200);
  });
});

describe('tRPC batches', () => {
  const batch = (paths: string[], inputs: unknown[]) => {
    const input = encodeURIComponent(JSON.stringify(Object.fromEntries(inputs.map((v, i) => [i, v]))));
    return api.handler(
      new Request(`http://test/api/trpc/${paths.join(',')}?batch=1&input=${input}`, { headers: { 'x-api-key': key } }),
    );
  };

  it(`refuses more than ${LIMITS.batchCalls} calls in one request, naming the limit`, async () => {
    const over = await batch(Array(LIMITS.batchCalls + 1).fill('projects.list'), []);
    expect(over.status).toBe(413);
    expect(((await over.json()) as { error: { message: string } }).error.message).toMatch(
      new RegExp(`batch has ${LIMITS.batchCalls + 1} calls; one request carries at most ${LIMITS.batchCalls}`),
    );
    const at = await batch(Array(LIMITS.batchCalls).fill('projects.list'), []);
    expect(at.status).toBe(200);
  });

  it('charges series reads to the request: calls past the points budget are refused with 400 naming it', async () => {
    const runId = await newRun();
    const keys = Array.from({ length: LIMITS.keysPerSeriesQuery }, (_, i) => `k${i}`);
    const input = { runIds: [runId], keys, buckets: LIMITS.maxBuckets }; // 250,000 points at most
    const per = keys.length * LIMITS.maxBuckets;
    const calls = Math.floor(LIMITS.pointsPerRequest / per) + 1;
    const res = await batch(Array(calls).fill('metrics.series'), Array(calls).fill(input));
    const out = (await res.json()) as { error?: { message: string; data: { httpStatus: number } } }[];
    const refused = out.filter((o) => o.error);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.error!.data.httpStatus).toBe(400);
    expect(refused[0]!.error!.message).toMatch(/one request reads at most 2,000,000/);
    // one call alone past the budget: 9 runs × 50 keys × 5,000 buckets
    const runIds = [runId, ...(await Promise.all(Array.from({ length: 8 }, newRun)))];
    const one = await api.call('metrics.series', { ...input, runIds }, { key, method: 'GET' });
    expect(one.status).toBe(400);
    expect(one.json.error!.message).toMatch(/asks for up to 2,250,000 points .* one request reads at most 2,000,000/);
  });
});

describe('statement timeout', () => {
  it('a query stopped by statement_timeout answers 503 with a message, not a 500 with the database error', async () => {
    const db = createDb({ connectionString: t.url, max: 2, statementTimeoutMs: 300 });
    const slow = createApiHandler({ db, notifier: api.notifier, auth: null });
    const locker = await t.db.pool.connect();
    try {
      // a lock held elsewhere makes any read of the tables wait past the timeout
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE run, project IN ACCESS EXCLUSIVE MODE');
      for (const path of ['runs.list', 'projects.list']) {
        const input = path === 'runs.list' ? encodeURIComponent(JSON.stringify({})) : '';
        const res = await slow(
          new Request(`http://test/api/trpc/${path}${input ? `?input=${input}` : ''}`, {
            headers: { 'x-api-key': key },
          }),
        );
        const body = (await res.json()) as { error: { message: string } };
        expect({ path, status: res.status }).toEqual({ path, status: 503 });
        expect(body.error.message).toMatch(/took too long and was stopped/);
        expect(body.error.message).not.toMatch(/canceling statement/);
      }
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
      await db.close();
    }
  });
});

describe('metric keys', () => {
  const log = (runId: string, keys: string[]) =>
    api.call(
      'metrics.log',
      { runId, columns: { keys, key: keys.map((_, i) => i), step: keys.map(() => 0), value: keys.map(() => 1) } },
      { key },
    );

  it(`a run logs at most ${LIMITS.metricKeysPerRun} distinct keys; its existing keys can still be logged`, async () => {
    const runId = await newRun();
    const first = Array.from({ length: LIMITS.metricKeysPerRun }, (_, i) => `m${i}-${suffix}`);
    expect((await log(runId, first)).status).toBe(200);
    const more = await log(runId, ['one-too-many']);
    expect(more.status).toBe(400);
    expect(more.json.error!.message).toMatch(
      /has 1000 metric keys and this batch adds 1 more; a run logs at most 1,000/,
    );
    const again = await api.call('metrics.log', { runId, points: [{ key: first[0], step: 1, value: 2 }] }, { key });
    expect(again.status).toBe(200);
  });

  it(`a point's time is at most ${LIMITS.maxTimeMs} (what the metric store's chunks hold): past it, 400 naming time`, async () => {
    const runId = await newRun();
    const at = (time: number) =>
      api.call(
        'metrics.log',
        { runId, columns: { keys: ['t'], key: [0, 0], step: [0, 1], value: [1, 2], time: [0, time] } },
        { key },
      );
    const late = await at(LIMITS.maxTimeMs + 1);
    expect(late.status).toBe(400);
    expect(late.json.error!.message).toMatch(/time is at most 281474976710655/);
    expect((await at(LIMITS.maxTimeMs)).status).toBe(200);
  });

  it('a single batch over the cap (the importer, MLflow) is refused before its names are stored', async () => {
    // tRPC batches hold at most 1,000 keys already; other writers reach insertMetricPoints directly
    const runId = await newRun();
    const names = Array.from({ length: MAX_METRIC_KEYS_PER_RUN + 1 }, (_, i) => `burst${i}-${suffix}`);
    const points = names.map((k) => ({ key: k, step: 0, value: 1 }));
    const r = insertMetricPoints(t.db.pool, runId, points);
    await expect(r).rejects.toBeInstanceOf(MetricKeyCapError);
    await expect(r).rejects.toThrow(/this batch logs 1001 distinct metric keys; a run logs at most 1,000/);
    const interned = await t.db.pool.query('SELECT count(*)::int AS n FROM metric_key WHERE name = ANY($1)', [names]);
    expect(interned.rows[0].n).toBe(0);
  });
});

describe('trainer settings are bounded at launch', () => {
  it.each([
    ['steps: 1e12', { steps: 1e12 }, /config\.steps: steps is at most 1,000,000/],
    [
      'model.dModel: 1048576',
      { overrides: { 'model.dModel': 1048576 } },
      /config\.overrides\.model\.dModel: model\.dModel is at most 1,024/,
    ],
    [
      'model.nLayer: 100000',
      { overrides: { 'model.nLayer': 100000 } },
      /config\.overrides\.model\.nLayer: model\.nLayer is at most 24/,
    ],
    ['overrides.steps: 1e12', { overrides: { steps: 1e12 } }, /config\.overrides\.steps: steps is at most 1,000,000/],
    [
      'an unknown key',
      { overrides: { 'model.nLayers': 3 } },
      /model\.nLayers is not a VFT setting that can be overridden; valid keys: steps/,
    ],
    [
      'a string value',
      { overrides: { 'optim.lr': 'fast' } },
      /config\.overrides\.optim\.lr: optim\.lr must be a finite number/,
    ],
  ])('refuses %s with 400 naming the field', async (_what, extra, message) => {
    const r = await api.call(
      'runs.launch',
      { kind: 'vft', project: `p-${suffix}`, config: { preset: 'tiny', seed: 1, ...extra } },
      { key },
    );
    expect(r.status).toBe(400);
    expect(r.json.error!.message).toMatch(message);
  });

  it('refuses alignment and sweep overrides past their bounds, naming the field', async () => {
    const align = await api.call(
      'runs.launch',
      {
        kind: 'align',
        project: `p-${suffix}`,
        parentRunId: 'none',
        config: {
          method: 'aft',
          seed: 1,
          sampling: { k: 8, temperature: 0.8, questions: 100 },
          overrides: { 'eval.k': 1000 },
        },
      },
      { key },
    );
    expect(align.status).toBe(400);
    expect(align.json.error!.message).toMatch(/config\.overrides\.eval\.k: eval\.k is at most 64/);
    const sweep = await api.call(
      'sweeps.launch',
      { name: 's', project: `p-${suffix}`, base: { vftOverrides: { 'model.nHead': 4096 } } },
      { key },
    );
    expect(sweep.status).toBe(400);
    expect(sweep.json.error!.message).toMatch(/base\.vftOverrides\.model\.nHead: model\.nHead is at most 32/);
  });

  it('still launches within the bounds', async () => {
    const r = await api.call(
      'runs.launch',
      {
        kind: 'vft',
        project: `p-${suffix}`,
        config: { preset: 'tiny', seed: 1, overrides: { 'model.nLayer': 3, 'optim.lr': 1e-3 } },
      },
      { key },
    );
    expect(r.status).toBe(200);
  });
});
