/**
 * GPU jobs through the API (docs/architecture.md, "GPU jobs"): `runs.launch` and `sweeps.launch` take `resources`,
 * enqueue on the GPU queue what asks for a GPU, and refuse anything else with a 400 naming the field, writing nothing;
 * `runs.start` records where the worker trains the run as its params, under the keys a worker may write only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createRedis, dropTestQueues, FleetHeartbeat, JobProducer, testQueueName } from '@aft/queue';
import { NO_GPU_WORKER } from '../src/router/sweeps';
import { configParams } from '../src/mlflow/runs';
import { createTeamWithKey, createTestHandler } from '../src/testing';

let t: TestDatabase;
let producer: JobProducer;
let api: ReturnType<typeof createTestHandler>;
let key: string;

beforeAll(async () => {
  t = await createTestDatabase();
  producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), testQueueName());
  api = createTestHandler(t.db, t.url, null, producer);
  key = (await createTeamWithKey(t.db, `gpu-${Math.random().toString(36).slice(2, 8)}`)).key;
});
afterAll(async () => {
  await dropTestQueues(producer);
  await api?.notifier.close();
  await t?.drop();
});

const vft = (extra: Record<string, unknown> = {}) => ({
  kind: 'vft',
  project: 'gpu',
  config: { preset: 'tiny', seed: 1, steps: 10 },
  ...extra,
});
const sweep = (extra: Record<string, unknown> = {}) => ({
  name: 'gpu sweep',
  project: 'gpu',
  axes: { method: ['aft', 'dpo'] },
  ...extra,
});
const count = async () => (await t.db.pool.query(`SELECT count(*)::int AS n FROM run`)).rows[0].n as number;
const configOf = async (id: string) =>
  (await t.db.pool.query(`SELECT config FROM run WHERE id = $1`, [id])).rows[0].config as Record<string, unknown>;

async function launchRun(extra: Record<string, unknown>): Promise<string> {
  const r = await api.call('runs.launch', vft(extra), { key });
  expect(r.status, r.json.error?.message).toBe(200);
  return (r.json.result!.data as { runId: string }).runId;
}

describe('runs.launch with resources', () => {
  it('enqueues a run that asks for a GPU on the GPU queue, and records what it asked for', async () => {
    const gpu = await launchRun({ resources: { gpu: 1 } });
    expect(await (await producer.gpu.getJob(gpu))!.getState()).toBe('waiting');
    expect(await producer.runs.getJob(gpu)).toBeUndefined();
    expect(await configOf(gpu)).toMatchObject({ preset: 'tiny', resources: { gpu: 1 } });

    const cpu = await launchRun({ resources: { gpu: 0 } });
    const plain = await launchRun({});
    for (const id of [cpu, plain]) {
      expect(await (await producer.runs.getJob(id))!.getState()).toBe('waiting');
      expect(await producer.gpu.getJob(id)).toBeUndefined();
      expect(await configOf(id)).not.toHaveProperty('resources');
    }
  });

  it.each([
    [{ gpu: 2 }, /resources\.gpu: gpu is at most 1/],
    [{ gpu: -1 }, /resources\.gpu: gpu must be ≥ 0/],
    [{ gpu: 0.5 }, /resources\.gpu: gpu must be an integer/],
    [{ gpu: 'yes' }, /resources\.gpu: /],
    [{ tpu: 1 }, /resources: .*tpu/],
    ['gpu', /resources: /],
  ])('refuses resources %j with a 400 naming the field, writing nothing', async (resources, message) => {
    const before = await count();
    const r = await api.call('runs.launch', vft({ resources }), { key });
    expect(r.status).toBe(400);
    expect(r.json.error!.message).toMatch(message);
    expect(await count()).toBe(before);
  });
});

describe('sweeps.launch with resources', () => {
  type SweepView = { runs: { id: string; method: string }[] };
  async function launchSweep(resources: unknown) {
    const r = await api.call('sweeps.launch', sweep({ resources }), { key });
    expect(r.status, r.json.error?.message).toBe(200);
    const { sweepId } = r.json.result!.data as { sweepId: string };
    const view = (await api.call('sweeps.get', { id: sweepId }, { key, method: 'GET' })).json.result!.data as SweepView;
    const parent = view.runs.find((x) => x.method === 'vft')!;
    const release = await producer.control.getJob(`release-${parent.id}`);
    return { view, parent, release: release! };
  }

  it('puts the VFT parents on a GPU and the alignment runs on CPUs', async () => {
    const { view, parent, release } = await launchSweep({ vft: { gpu: 1 } });
    expect(await (await producer.gpu.getJob(parent.id))!.getState()).toBe('waiting');
    expect(await release.getState()).toBe('waiting-children');
    // the release job enqueues the alignment lanes where this says
    expect(release.data).toMatchObject({ resources: { gpu: 0 } });
    expect(await configOf(parent.id)).toMatchObject({ resources: { gpu: 1 } });
    for (const r of view.runs.filter((x) => x.method !== 'vft'))
      expect(await configOf(r.id)).not.toHaveProperty('resources');
  });

  it('puts every job on a GPU with resources.gpu, the alignment stage overriding it', async () => {
    const all = await launchSweep({ gpu: 1 });
    expect(await producer.gpu.getJob(all.parent.id)).toBeDefined();
    expect(all.release.data).toMatchObject({ resources: { gpu: 1 } });
    const mixed = await launchSweep({ gpu: 1, align: { gpu: 0 } });
    expect(await producer.gpu.getJob(mixed.parent.id)).toBeDefined();
    expect(mixed.release.data).toMatchObject({ resources: { gpu: 0 } });
  });

  it.each([
    [{ gpu: 2 }, /resources\.gpu: gpu is at most 1/],
    [{ vft: { gpu: 4 } }, /resources\.vft\.gpu: gpu is at most 1/],
    [{ align: { gpu: -1 } }, /resources\.align\.gpu: gpu must be ≥ 0/],
    [{ parents: { gpu: 1 } }, /resources: .*parents/],
  ])('refuses resources %j with a 400 naming the field, writing nothing', async (resources, message) => {
    const before = await count();
    const r = await api.call('sweeps.launch', sweep({ resources }), { key });
    expect(r.status).toBe(400);
    expect(r.json.error!.message).toMatch(message);
    expect(await count()).toBe(before);
  });
});

describe('a GPU launch with no GPU worker', () => {
  /** A worker beating in this test's queue, with a GPU pool or CPUs only; stopped (taken off the list) after. */
  async function withWorker(kind: 'cpu' | 'gpu', body: () => Promise<void>) {
    const redis = createRedis('redis://127.0.0.1:6379', 'worker');
    const id = `w-${kind}-${Math.random().toString(36).slice(2, 8)}`;
    const hb = new FleetHeartbeat(redis, producer.queueName, () => ({
      id,
      host: 'test-host',
      pid: 1,
      version: '0',
      startedAt: Date.now(),
      heartbeatMs: 60_000,
      pools: [{ kind, queue: producer.queueName, concurrency: 1, backend: null, adapter: null, bullId: `b-${id}` }],
      resources: { cores: 1, memoryMb: 1, concurrency: 1, gpus: kind === 'gpu' ? 1 : 0 },
      jobs: [],
    }));
    await hb.beat();
    try {
      await body();
    } finally {
      await hb.stop(id);
      redis.disconnect();
    }
  }
  const warningOf = async (proc: 'runs.launch' | 'sweeps.launch', input: unknown) => {
    const r = await api.call(proc, input, { key });
    expect(r.status, r.json.error?.message).toBe(200);
    return (r.json.result!.data as { warning?: string }).warning;
  };

  it('runs.launch still launches, and warns, until a live worker has a GPU pool', async () => {
    const before = await count();
    expect(await warningOf('runs.launch', vft({ resources: { gpu: 1 } }))).toBe(NO_GPU_WORKER);
    expect(await count()).toBe(before + 1);
    expect(await warningOf('runs.launch', vft({}))).toBeUndefined();
    await withWorker('cpu', async () => {
      expect(await warningOf('runs.launch', vft({ resources: { gpu: 1 } }))).toBe(NO_GPU_WORKER);
    });
    await withWorker('gpu', async () => {
      expect(await warningOf('runs.launch', vft({ resources: { gpu: 1 } }))).toBeUndefined();
    });
  });

  it('sweeps.launch warns when a stage asks for a GPU and no live worker has a GPU pool', async () => {
    expect(await warningOf('sweeps.launch', sweep({ resources: { vft: { gpu: 1 } } }))).toBe(NO_GPU_WORKER);
    expect(await warningOf('sweeps.launch', sweep({ resources: { align: { gpu: 1 } } }))).toBe(NO_GPU_WORKER);
    expect(await warningOf('sweeps.launch', sweep({}))).toBeUndefined();
    await withWorker('gpu', async () => {
      expect(await warningOf('sweeps.launch', sweep({ resources: { gpu: 1 } }))).toBeUndefined();
    });
  });
});

describe('runs.start records where the run trains', () => {
  async function queued(): Promise<{ runId: string; token: string }> {
    const runId = await launchRun({ resources: { gpu: 1 } });
    const job = await producer.gpu.getJob(runId);
    return { runId, token: (job!.data as { runToken: string }).runToken };
  }
  const params = {
    backend: 'webgpu',
    'backend.provider': '@tensorflow/tfjs-backend-webgpu',
    'backend.adapter': 'mesa, llvmpipe',
    'backend.adapter.maxStorageBufferBindingSize': '134217728',
    'worker.host': 'gpu-1',
  };

  it('merges the params into the config, which MLflow clients read as params; a resume replaces them', async () => {
    const { runId, token } = await queued();
    const r = await api.call('runs.start', { id: runId, backend: 'webgpu', params }, { key: token });
    expect(r.status, r.json.error?.message).toBe(200);
    const config = await configOf(runId);
    expect(config).toMatchObject({ preset: 'tiny', seed: 1, resources: { gpu: 1 }, ...params });
    expect(configParams(config)).toEqual(
      expect.arrayContaining([
        { key: 'backend.adapter', value: 'mesa, llvmpipe' },
        { key: 'worker.host', value: 'gpu-1' },
      ]),
    );
    const again = await api.call(
      'runs.start',
      { id: runId, backend: 'webgpu', params: { 'worker.host': 'gpu-2' } },
      { key: token },
    );
    expect(again.status).toBe(200);
    expect(await configOf(runId)).toEqual({
      preset: 'tiny',
      seed: 1,
      steps: 10,
      overrides: {},
      sampling: [],
      resources: { gpu: 1 },
      'worker.host': 'gpu-2',
    });
    const row = await t.db.pool.query(`SELECT backend, status::text FROM run WHERE id = $1`, [runId]);
    expect(row.rows[0]).toEqual({ backend: 'webgpu', status: 'running' });
  });

  it("a resume on a wasm worker drops the webgpu start's adapter and kernels; repeated starts do not grow the config", async () => {
    const { runId, token } = await queued();
    const gpu = { ...params, 'backend.kernels': 'fused-attention', 'backend.skipped': 'none' };
    expect((await api.call('runs.start', { id: runId, backend: 'webgpu', params: gpu }, { key: token })).status).toBe(
      200,
    );
    const wasm = { backend: 'wasm', 'backend.provider': '@tensorflow/tfjs-backend-wasm', 'worker.host': 'cpu-1' };
    expect((await api.call('runs.start', { id: runId, backend: 'wasm', params: wasm }, { key: token })).status).toBe(
      200,
    );
    const config = await configOf(runId);
    expect(Object.keys(config).filter((k) => k.startsWith('backend') || k.startsWith('worker.'))).toEqual(
      expect.arrayContaining(Object.keys(wasm)),
    );
    expect(config).toMatchObject(wasm);
    for (const k of [
      'backend.adapter',
      'backend.kernels',
      'backend.skipped',
      'backend.adapter.maxStorageBufferBindingSize',
    ])
      expect(config).not.toHaveProperty([k]);
    // 20 starts, each with 60 new keys of 200 characters: only the last start's stay
    for (let n = 0; n < 20; n++) {
      const many = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`worker.x${n}-${i}`, 'v'.repeat(200)]));
      const r = await api.call('runs.start', { id: runId, params: many }, { key: token });
      expect(r.status, r.json.error?.message).toBe(200);
    }
    const last = await configOf(runId);
    expect(Object.keys(last).filter((k) => k.startsWith('worker.')).length).toBe(60);
    expect(last).toHaveProperty(['worker.x19-0']);
    expect(JSON.stringify(last).length).toBeLessThan(16_384);
  });

  it.each([
    [{ seed: '7' }, /params\.seed: a key is `backend`, `backend.<name>` or `worker.<name>`/],
    [{ worker: 'x' }, /params\.worker: a key is/],
    [{ 'backend.adapter': 'x'.repeat(1001) }, /params\.backend\.adapter: a param is at most 1000 characters/],
    [Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`worker.k${i}`, 'v'])), /params: at most 64 params/],
    [
      Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`worker.k${i}`, 'v'.repeat(1000)])),
      /params: must serialise to at most 16 KiB of JSON/,
    ],
  ])('refuses params %#, naming the field, and leaves the run as it was', async (bad, message) => {
    const { runId, token } = await queued();
    const r = await api.call('runs.start', { id: runId, params: bad }, { key: token });
    expect(r.status).toBe(400);
    expect(r.json.error!.message).toMatch(message);
    const row = await t.db.pool.query(`SELECT status::text, config FROM run WHERE id = $1`, [runId]);
    expect(row.rows[0].status).toBe('queued');
    expect(row.rows[0].config).toEqual({
      preset: 'tiny',
      seed: 1,
      steps: 10,
      overrides: {},
      sampling: [],
      resources: { gpu: 1 },
    });
  });
});
