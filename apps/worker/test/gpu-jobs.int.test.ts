/**
 * GPU jobs end to end (docs/architecture.md, "GPU jobs"), with real Postgres, Redis and worker processes: a worker
 * without AFT_WORKER_GPUS leaves GPU jobs waiting; one with AFT_WORKER_GPUS=1 takes them, one at a time, in job
 * processes of their own backend, and its CPU jobs on wasm; a sweep with its VFT parent on a GPU and its alignment
 * runs on CPUs runs to success, each job taken from its queue. No GPU is needed: the GPU pool's backend here is
 * tfjs's `cpu` (AFT_GPU_BACKEND), which the CPU pool never picks, so each run's record tells its pool apart;
 * webgpu-job.int.test.ts trains a GPU job on webgpu.
 */
import { hostname } from 'node:os';
import { describe, expect, it, vi } from 'vitest';
import { gpuQueueName } from '@aft/queue';
import { loadEnv } from '../src/env';
import { trainingPools } from '../src/pools';
import { finished, QUICK_ALIGN_OVERRIDES, QUICK_VFT_OVERRIDES, useStack, type RunRow, type Worker } from './stack';

vi.setConfig({ testTimeout: 300_000 });

const s = useStack('gpu-jobs');
let gpuWorker: Worker | null = null;
const GPU_WORKER = { AFT_WORKER_GPUS: '1', AFT_GPU_BACKEND: 'cpu', AFT_BACKEND: undefined };

const vft = (seed: number, gpu: number) => ({
  kind: 'vft',
  project: 'gpu-jobs',
  name: `${gpu ? 'gpu' : 'cpu'}-${seed}`,
  config: { preset: 'tiny', seed, steps: 2, overrides: QUICK_VFT_OVERRIDES },
  resources: { gpu },
});

describe('the pools of a worker', () => {
  it('are a CPU pool, and with AFT_WORKER_GPUS=N a GPU pool taking N jobs at a time on its own backend', () => {
    const base = { AFT_QUEUE: 'q', AFT_CONCURRENCY: '3' };
    expect(trainingPools(loadEnv(base))).toEqual([{ kind: 'cpu', queue: 'q', concurrency: 3, backend: undefined }]);
    expect(trainingPools(loadEnv({ ...base, AFT_BACKEND: 'cpu' }))[0]!.backend).toBe('cpu');
    expect(trainingPools(loadEnv({ ...base, AFT_WORKER_GPUS: '2' }))).toEqual([
      { kind: 'cpu', queue: 'q', concurrency: 3, backend: 'wasm' },
      { kind: 'gpu', queue: gpuQueueName('q'), concurrency: 2, backend: 'webgpu' },
    ]);
    const chosen = trainingPools(
      loadEnv({ ...base, AFT_WORKER_GPUS: '1', AFT_BACKEND: 'cpu', AFT_GPU_BACKEND: 'tensorflow' }),
    );
    expect(chosen.map((p) => p.backend)).toEqual(['cpu', 'tensorflow']);
    expect(() => loadEnv({ ...base, AFT_WORKER_GPUS: '-1' })).toThrow(/AFT_WORKER_GPUS/);
    expect(() => loadEnv({ ...base, AFT_GPU_BACKEND: 'cuda' })).toThrow(/AFT_GPU_BACKEND/);
  });
});

describe('GPU jobs', () => {
  it('wait on a worker without AFT_WORKER_GPUS, and a worker with AFT_WORKER_GPUS=1 takes them one at a time', async () => {
    const cpuOnly = s.startWorker({ AFT_BACKEND: 'wasm' });
    const gpuRuns = [
      (await s.call<{ runId: string }>('runs.launch', vft(1, 1))).runId,
      (await s.call<{ runId: string }>('runs.launch', vft(2, 1))).runId,
    ];
    const cpuRun = (await s.call<{ runId: string }>('runs.launch', vft(3, 0))).runId;
    // the CPU-only worker trains the CPU run to its end, all the while leaving the GPU jobs where they are
    const done = await s.untilFinished('the CPU run', () => s.getRun(cpuRun));
    expect([done.status, done.error]).toEqual(['succeeded', null]);
    expect(done.config).toMatchObject({ backend: 'wasm', 'worker.queue': s.queue, 'worker.host': hostname() });
    for (const id of gpuRuns) {
      expect((await s.getRun(id)).status).toBe('queued');
      expect(await (await s.producer.gpu.getJob(id))!.getState()).toBe('waiting');
    }
    expect(cpuOnly.log.some((l) => gpuRuns.some((id) => l.includes(id)))).toBe(false);
    await s.stopWorker(cpuOnly);

    const gpu = (gpuWorker = s.startWorker(GPU_WORKER));
    const runs = await s.until('both GPU runs', async () => {
      const rs = await Promise.all(gpuRuns.map(s.getRun));
      return rs.every((r) => finished(r.status)) ? rs : null;
    });
    for (const r of runs) {
      expect([r.status, r.error]).toEqual(['succeeded', null]);
      // trained in the GPU pool's job process, on its backend, taken from the GPU queue
      expect(r.backend).toBe('cpu');
      expect(r.config).toMatchObject({
        backend: 'cpu',
        'backend.provider': '@tensorflow/tfjs-backend-cpu',
        'worker.queue': gpuQueueName(s.queue),
        'worker.host': hostname(),
      });
    }
    // one at a time: each job started after the other had finished
    const jobs = await Promise.all(gpuRuns.map(async (id) => (await s.producer.gpu.getJob(id))!));
    const spans = jobs.map((j) => [j.processedOn!, j.finishedOn!] as const).sort((a, b) => a[0] - b[0]);
    expect(spans[1]![0], `GPU jobs ran at ${JSON.stringify(spans)}`).toBeGreaterThanOrEqual(spans[0]![1]);
    expect(gpu.log.some((l) => l.includes(`listening on ${gpuQueueName(s.queue)} (gpu, concurrency 1`))).toBe(true);
  });

  it('trains a sweep’s VFT parent on the GPU and its alignment runs on CPUs (wasm, the GPU worker’s default)', async () => {
    // the GPU worker of the test above (or a new one, when that test did not get as far): it takes the CPU jobs too
    if (gpuWorker?.proc.exitCode !== null) gpuWorker = s.startWorker(GPU_WORKER);
    const { sweepId } = await s.call<{ sweepId: string }>('sweeps.launch', {
      name: 'gpu parents',
      project: 'gpu-jobs',
      base: {
        preset: 'tiny',
        seed: 4,
        steps: 2,
        k: 2,
        questions: 4,
        vftSteps: 2,
        vftOverrides: QUICK_VFT_OVERRIDES,
        alignOverrides: QUICK_ALIGN_OVERRIDES,
      },
      // continued VFT: a parent trained for seconds samples no pair a ranking method needs
      axes: { method: ['vft'], lr: [1e-4, 2e-4] },
      maxConcurrent: 2,
      resources: { vft: { gpu: 1 } },
    });
    type SweepRun = RunRow & { parentRunId: string | null };
    const sweep = await s.untilSweepFinished<{ status: string; runs: SweepRun[] }>('the sweep', sweepId, 240_000);
    expect(sweep.runs.map((r) => [r.method, r.status, r.error])).toEqual(
      sweep.runs.map((r) => [r.method, 'succeeded', null]),
    );
    expect(sweep.status).toBe('succeeded');
    const parent = sweep.runs.find((r) => r.parentRunId === null)!;
    const children = sweep.runs.filter((r) => r.parentRunId === parent.id);
    expect(children).toHaveLength(2);

    expect(await (await s.producer.gpu.getJob(parent.id))!.getState()).toBe('completed');
    expect(await s.producer.runs.getJob(parent.id)).toBeUndefined();
    expect(await s.getRun(parent.id)).toMatchObject({
      backend: 'cpu',
      config: { resources: { gpu: 1 }, 'worker.queue': gpuQueueName(s.queue) },
    });
    for (const c of children) {
      expect(await (await s.producer.runs.getJob(c.id))!.getState()).toBe('completed');
      expect(await s.producer.gpu.getJob(c.id)).toBeUndefined();
      const row = await s.getRun(c.id);
      expect(row.backend).toBe('wasm');
      expect(row.config).toMatchObject({ backend: 'wasm', 'worker.queue': s.queue });
      // chosen, not picked automatically: nothing was tried and passed over before wasm
      expect(row.config).not.toHaveProperty('backend.skipped');
      expect(row.config).not.toHaveProperty('resources');
    }
  });
});
