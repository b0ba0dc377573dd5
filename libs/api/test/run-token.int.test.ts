/**
 * Run tokens (libs/db/src/run-tokens.ts, libs/api/src/run-access.ts): the credential each training job carries.
 * Over the real handler: a token writes its own run only (403 elsewhere), reads its run and the runs it trains
 * from (404 for anything else, as for a missing id), is stored hashed, and is refused once its run has ended.
 * Also the per-team cap on queued plus running runs.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunNotifier } from '@aft/db';
import { countPoints, createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createRedis, dropTestQueues, JobProducer, testQueueName } from '@aft/queue';
import { createApiHandler } from '../src/http';
import { createMlflowHandler } from '../src/mlflow/handler';
import { createTeamWithKey, createTestHandler } from '../src/testing';

let t: TestDatabase;
let producer: JobProducer;
let api: ReturnType<typeof createTestHandler>;
let keyA: string;
let keyB: string;
const suffix = Math.random().toString(36).slice(2, 8);

beforeAll(async () => {
  t = await createTestDatabase();
  producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), testQueueName());
  api = createTestHandler(t.db, t.url, null, producer);
  keyA = (await createTeamWithKey(t.db, `tok-a-${suffix}`)).key;
  keyB = (await createTeamWithKey(t.db, `tok-b-${suffix}`)).key;
});
afterAll(async () => {
  await dropTestQueues(producer);
  await api?.notifier.close();
  await t?.drop();
});

const vft = (seed: number) => ({ kind: 'vft', project: 'tokens', config: { preset: 'tiny', seed, steps: 10 } });

async function launch(key: string, seed: number): Promise<{ runId: string; token: string }> {
  const r = await api.call('runs.launch', vft(seed), { key });
  expect(r.status, r.json.error?.message).toBe(200);
  const { runId } = r.json.result!.data as { runId: string };
  const job = await producer.runs.getJob(runId);
  return { runId, token: (job!.data as { runToken: string }).runToken };
}

const points = (runId: string) => ({ runId, points: [{ key: 'train/loss', step: 1, value: 0.5 }] });

describe('run tokens', () => {
  it('each queued job carries its own token, stored only as its SHA-256', async () => {
    const { runId, token } = await launch(keyA, 1);
    expect(token).toMatch(/^aftrun_[\w-]{32}$/);
    const rows = await t.db.pool.query<{ hash: string }>('SELECT hash FROM run_token WHERE run_id = $1', [runId]);
    expect(rows.rows.map((r) => r.hash)).toEqual([createHash('sha256').update(token).digest('hex')]);
    const raw = await t.db.pool.query(`SELECT 1 FROM run_token WHERE hash = $1`, [token]);
    expect(raw.rowCount).toBe(0);
  });

  it('starts, logs to and finishes its own run', async () => {
    const { runId, token } = await launch(keyA, 2);
    const start = await api.call('runs.start', { id: runId, backend: 'wasm' }, { key: token });
    expect(start.json.result?.data).toEqual({ started: true, status: 'running' });
    expect((await api.call('metrics.log', points(runId), { key: token })).status).toBe(200);
    expect(
      (
        await api.call(
          'samples.log',
          { runId, rows: [{ step: 1, questionId: 'q1', prompt: 'p', completion: 'x' }] },
          { key: token },
        )
      ).status,
    ).toBe(200);
    expect(
      (await api.call('events.log', { runId, kind: 'resumed', step: 1, details: {} }, { key: token })).status,
    ).toBe(200);
    expect((await api.call('runs.setSummary', { id: runId, summary: { a: 1 } }, { key: token })).status).toBe(200);
    const series = await api.call(
      'metrics.series',
      { runIds: [runId], keys: ['train/loss'] },
      { key: token, method: 'GET' },
    );
    expect(series.status).toBe(200);
    // the same series in binary columns (what the dashboard reads; a job may read it too)
    const packed = await api.call(
      'metrics.seriesPacked',
      { runIds: [runId], keys: ['train/loss'] },
      { key: token, method: 'GET' },
    );
    expect(packed.status).toBe(200);
    expect((await api.call('runs.get', { id: runId }, { key: token, method: 'GET' })).status).toBe(200);
    expect((await api.call('runs.setStatus', { id: runId, status: 'succeeded' }, { key: token })).status).toBe(200);
    // the run has ended: its token is gone, and refused
    const after = await api.call('metrics.log', points(runId), { key: token });
    expect(after.status).toBe(401);
    expect(after.json.error!.message).toMatch(/run token not recognised, expired, or its run has ended/);
    expect((await t.db.pool.query('SELECT 1 FROM run_token WHERE run_id = $1', [runId])).rowCount).toBe(0);
  });

  it('cannot write another run of its team (403), nor read it (404, as a missing id)', async () => {
    const { runId, token } = await launch(keyA, 3);
    const other = await launch(keyA, 4);
    for (const [path, input] of [
      ['metrics.log', points(other.runId)],
      ['runs.setStatus', { id: other.runId, status: 'failed' }],
      ['runs.setSummary', { id: other.runId, summary: { x: 1 } }],
      ['runs.start', { id: other.runId }],
      ['events.log', { runId: other.runId, kind: 'x', details: {} }],
      ['artifacts.register', { runId: other.runId, kind: 'other', name: 'x', uri: 'file:///x' }],
    ] as const) {
      const r = await api.call(path, input, { key: token });
      expect(r.status, path).toBe(403);
      expect(r.json.error!.message, path).toMatch(new RegExp(`may only write run ${runId}`));
    }
    const missing = await api.call('runs.get', { id: 'rdoesnotexist' }, { key: keyA, method: 'GET' });
    for (const [path, input] of [
      ['runs.get', { id: other.runId }],
      ['metrics.series', { runIds: [runId, other.runId], keys: ['train/loss'] }],
      ['metrics.seriesPacked', { runIds: [other.runId], keys: ['train/loss'] }],
      ['artifacts.list', { runId: other.runId }],
    ] as const) {
      const r = await api.call(path, input, { key: token, method: 'GET' });
      expect(r.status, path).toBe(404);
      expect(r.json.error!.message).toBe(missing.json.error!.message.replace('rdoesnotexist', other.runId));
    }
    // what a job never needs is refused outright
    for (const [path, input, method] of [
      ['runs.launch', vft(9), 'POST'],
      ['runs.delete', { id: runId }, 'POST'],
      ['projects.list', {}, 'GET'],
      ['keys.list', {}, 'GET'],
    ] as const) {
      const r = await api.call(path, input, { key: token, method });
      expect(r.status, path).toBe(403);
    }
    expect((await t.db.pool.query('SELECT status FROM run WHERE id = $1', [other.runId])).rows[0].status).toBe(
      'queued',
    );
  });

  it("answers another team's runs exactly as missing ones", async () => {
    const { token } = await launch(keyA, 5);
    const b = await launch(keyB, 1);
    const r = await api.call('runs.get', { id: b.runId }, { key: token, method: 'GET' });
    expect(r.status).toBe(404);
    expect(r.json.error!.message).toBe(`run ${b.runId} not found`);
    const s = await api.call(
      'metrics.series',
      { runIds: [b.runId], keys: ['train/loss'] },
      { key: token, method: 'GET' },
    );
    expect(s.status).toBe(404);
    expect((await api.call('metrics.log', points(b.runId), { key: token })).status).toBe(403);
    expect((await countPoints(t.db, b.runId)).n).toBe(0);
  });

  it("an alignment run's token reads its VFT parent but cannot write it", async () => {
    const r = await api.call(
      'sweeps.launch',
      { name: 'tok', project: 'tokens', axes: { method: ['aft'] }, base: { steps: 4, vftSteps: 4 } },
      { key: keyA },
    );
    expect(r.status, r.json.error?.message).toBe(200);
    const { sweepId } = r.json.result!.data as { sweepId: string };
    const view = await api.call('sweeps.get', { id: sweepId }, { key: keyA, method: 'GET' });
    const runs = (view.json.result!.data as { runs: { id: string; method: string }[] }).runs;
    const parent = runs.find((x) => x.method === 'vft')!;
    const child = runs.find((x) => x.method !== 'vft')!;
    const release = await producer.control.getJob(`release-${parent.id}`);
    const { runToken } = (release!.data as { runs: { runId: string; runToken: string }[] }).runs.find(
      (x) => x.runId === child.id,
    )!;
    const got = await api.call('runs.get', { id: parent.id }, { key: runToken, method: 'GET' });
    expect(got.status).toBe(200);
    // nothing of the sweep's other runs comes with it
    expect(got.json.result!.data).toMatchObject({ id: parent.id, children: [], parent: null });
    const full = await api.call('runs.get', { id: parent.id }, { key: keyA, method: 'GET' });
    expect((full.json.result!.data as { children: unknown[] }).children.length).toBeGreaterThan(0);
    const series = await api.call(
      'metrics.series',
      { runIds: [parent.id], keys: ['train/loss'] },
      { key: runToken, method: 'GET' },
    );
    expect(series.status).toBe(200);
    expect((await api.call('runs.setSummary', { id: parent.id, summary: { x: 1 } }, { key: runToken })).status).toBe(
      403,
    );
  });

  it('is refused once its run is canceled or deleted', async () => {
    const canceled = await launch(keyA, 6);
    expect((await api.call('runs.cancel', { id: canceled.runId }, { key: keyA })).status).toBe(200);
    expect((await api.call('runs.start', { id: canceled.runId }, { key: canceled.token })).status).toBe(401);
    const deleted = await launch(keyA, 7);
    await t.db.pool.query('DELETE FROM run WHERE id = $1', [deleted.runId]);
    expect((await api.call('runs.get', { id: deleted.runId }, { key: deleted.token, method: 'GET' })).status).toBe(401);
  });

  it('is refused when expired', async () => {
    const { runId, token } = await launch(keyA, 8);
    await t.db.pool.query(`UPDATE run_token SET expires_at = now() - interval '1 second' WHERE run_id = $1`, [runId]);
    expect((await api.call('runs.start', { id: runId }, { key: token })).status).toBe(401);
  });

  it('is refused by the MLflow API, which cannot hold it to its run', async () => {
    const { token } = await launch(keyA, 10);
    const mlflow = createMlflowHandler({
      db: t.db,
      notifier: api.notifier,
      auth: null,
      rateLimiter: null,
      artifactDir: '/nonexistent',
    });
    const res = await mlflow(
      new Request('http://test/api/2.0/mlflow/experiments/search', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ max_results: 10 }),
      }),
    );
    expect(res.status).toBe(403);
  });
});

describe('active runs per team', () => {
  it('refuses a launch that would pass the cap with a 429 naming the limit, writing nothing', async () => {
    const { key } = await createTeamWithKey(t.db, `capped-${suffix}`);
    const notifier = new RunNotifier(t.url);
    const handler = createApiHandler({ db: t.db, notifier, auth: null, jobs: producer, maxActiveRuns: 4 });
    const call = (path: string, input: unknown) =>
      handler(
        new Request(`http://test/api/trpc/${path}`, {
          method: 'POST',
          headers: { 'x-api-key': key, 'content-type': 'application/json' },
          body: JSON.stringify(input),
        }),
      );
    try {
      expect((await call('runs.launch', vft(1))).status).toBe(200);
      const runs = async () =>
        (
          await t.db.pool.query(
            `SELECT count(*)::int AS n FROM run r JOIN project p ON p.id = r.project_id JOIN team tm ON tm.id = p.team_id WHERE tm.slug = $1`,
            [`capped-${suffix}`],
          )
        ).rows[0].n;
      // a parent and four alignment runs: 1 + 5 > 4
      const res = await call('sweeps.launch', {
        name: 'big',
        project: 'tokens',
        axes: { method: ['aft', 'dpo', 'pro', 'rrhf'] },
      });
      expect(res.status).toBe(429);
      const body = (await res.json()) as { error: { message: string } };
      expect(body.error.message).toMatch(/has 1 queued or running runs; launching 5 more would pass its limit of 4/);
      expect(await runs()).toBe(1);
      expect((await call('runs.launch', vft(2))).status).toBe(200);
    } finally {
      await notifier.close();
    }
  });
});
