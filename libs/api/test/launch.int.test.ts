import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createRedis, dropTestQueues, JobProducer, testQueueName } from '@aft/queue';
import { createTeamWithKey, createTestHandler } from '../src/testing';

let t: TestDatabase;
let producer: JobProducer;
let api: ReturnType<typeof createTestHandler>;
let key: string;

beforeAll(async () => {
  t = await createTestDatabase();
  producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), testQueueName());
  api = createTestHandler(t.db, t.url, null, producer);
  key = (await createTeamWithKey(t.db, 'launchers')).key;
});
afterAll(async () => {
  await dropTestQueues(producer);
  await api?.notifier.close();
  await t?.drop();
});

const count = async (table: 'run' | 'sweep') =>
  (await t.db.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;
const sweep = (extra: Record<string, unknown>) => ({ name: 'grid', project: 'p', ...extra });

describe('sweeps.launch', () => {
  it('writes the sweep, a shared parent and its runs, all queued, and enqueues the parent under its release job', async () => {
    const r = await api.call(
      'sweeps.launch',
      sweep({ axes: { method: ['aft', 'dpo'], constraint: ['none', 'detach'] } }),
      { key },
    );
    expect(r.status).toBe(200);
    const { sweepId } = r.json.result!.data as { sweepId: string };
    const view = await api.call('sweeps.get', { id: sweepId }, { key, method: 'GET' });
    const runs = (
      view.json.result!.data as {
        status: string;
        runs: { id: string; method: string; status: string; parentRunId: string | null }[];
      }
    ).runs;
    expect(runs).toHaveLength(5);
    expect(runs.every((x) => x.status === 'queued')).toBe(true);
    const parent = runs.find((x) => x.method === 'vft')!;
    expect(runs.filter((x) => x.method !== 'vft').every((x) => x.parentRunId === parent.id)).toBe(true);
    expect(await (await producer.runs.getJob(parent.id))!.getState()).toBe('waiting');
    expect(await (await producer.control.getJob(`release-${parent.id}`))!.getState()).toBe('waiting-children');
  });

  it.each([
    ['an unknown method', { axes: { method: ['ppo'] } }, /axes\.method\.0: a method is one of/],
    ['a negative learning rate', { axes: { lr: [-0.001] } }, /axes\.lr\.0: lr must be > 0/],
    ['an empty axis', { axes: { seed: [] } }, /axes\.seed: axes\.seed is empty/],
    ['k = 0', { axes: { k: [0] } }, /axes\.k\.0: k must be at least 1/],
    [
      'a grid beyond the limit',
      {
        axes: {
          seed: Array.from({ length: 30 }, (_, i) => i),
          lr: [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4, 8e-4, 9e-4, 1e-3],
        },
      },
      /axes: the grid has 300 runs; a sweep holds at most 256/,
    ],
  ])('rejects %s with a 400 naming the field, writing nothing', async (_what, extra, message) => {
    const [runs, sweeps] = [await count('run'), await count('sweep')];
    const r = await api.call('sweeps.launch', sweep(extra), { key });
    expect(r.status).toBe(400);
    expect(r.json.error!.message).toMatch(message);
    expect([await count('run'), await count('sweep')]).toEqual([runs, sweeps]);
  });

  it('leaves nothing behind when the queue is unreachable', async () => {
    const dead = new JobProducer(createRedis('redis://127.0.0.1:1', 'producer'), testQueueName());
    const down = createTestHandler(t.db, t.url, null, dead);
    const [runs, sweeps] = [await count('run'), await count('sweep')];
    const r = await down.call('sweeps.launch', sweep({ axes: { method: ['aft', 'dpo'] } }), { key });
    expect(r.status).toBe(503);
    expect(r.json.error!.message).toMatch(/job queue is unreachable; nothing was launched/);
    expect([await count('run'), await count('sweep')]).toEqual([runs, sweeps]);
    await down.notifier.close();
    await dead.close().catch(() => undefined);
  });
});

describe('runs.launch and runs.cancel', () => {
  it('refuses an alignment run from a parent that has not succeeded', async () => {
    const v = await api.call(
      'runs.launch',
      { kind: 'vft', project: 'p', config: { preset: 'tiny', seed: 1 } },
      { key },
    );
    expect(v.status).toBe(200);
    const { runId } = v.json.result!.data as { runId: string };
    const a = await api.call(
      'runs.launch',
      {
        kind: 'align',
        project: 'p',
        parentRunId: runId,
        config: { method: 'aft', seed: 1, sampling: { k: 8, temperature: 0.8, questions: 100 } },
      },
      { key },
    );
    expect(a.status).toBe(412);
    expect(a.json.error!.message).toMatch(
      /parentRunId: run \S+ is queued; launch alignment runs from a succeeded VFT run/,
    );
  });

  it('cancels a queued run: removed from the queue, marked canceled; a finished run is left alone', async () => {
    const v = await api.call(
      'runs.launch',
      { kind: 'vft', project: 'p', config: { preset: 'tiny', seed: 2 } },
      { key },
    );
    const { runId } = v.json.result!.data as { runId: string };
    expect(await producer.runs.getJob(runId)).toBeTruthy();
    const c = await api.call('runs.cancel', { id: runId }, { key });
    expect(c.json.result!.data).toMatchObject({ canceled: true, status: 'canceled' });
    expect(await producer.runs.getJob(runId)).toBeFalsy();
    const again = await api.call('runs.cancel', { id: runId }, { key });
    expect(again.json.result!.data).toMatchObject({ canceled: false, status: 'canceled' });
  });

  it('rejects bad launch input and a key without the launch scope', async () => {
    const bad = await api.call(
      'runs.launch',
      { kind: 'vft', project: 'p', config: { preset: 'tiny', seed: -1 } },
      { key },
    );
    expect(bad.status).toBe(400);
    expect(bad.json.error!.message).toMatch(/config\.seed: seed must be ≥ 0/);
    const logOnly = (await createTeamWithKey(t.db, 'loggers', ['log'])).key;
    const denied = await api.call(
      'runs.launch',
      { kind: 'vft', project: 'p', config: { preset: 'tiny', seed: 1 } },
      { key: logOnly },
    );
    expect(denied.status).toBe(403);
    expect(denied.json.error!.message).toMatch(/lacks the `launch` scope/);
  });
});
