/**
 * The worker's training pools (docs/architecture.md, "GPU jobs"): CPU jobs from `AFT_QUEUE`, `AFT_CONCURRENCY` at a
 * time, and on a worker started with `AFT_WORKER_GPUS=N` (N ≥ 1) GPU jobs from `<AFT_QUEUE>-gpu` as well, N at a time.
 * Each pool forks its own job processes (BullMQ's sandbox, one process per job in progress), with the backend it
 * trains on in their `AFT_BACKEND`: a tfjs backend is chosen once per process.
 */
import { gpuQueueName } from '@aft/queue';
import type { WorkerEnv } from './env';

export interface TrainingPool {
  kind: 'cpu' | 'gpu';
  queue: string;
  concurrency: number;
  /** `AFT_BACKEND` of its job processes; undefined leaves the worker's environment as it is. */
  backend: string | undefined;
}

export function trainingPools(env: WorkerEnv): TrainingPool[] {
  const gpus = env.AFT_WORKER_GPUS;
  const cpu: TrainingPool = {
    kind: 'cpu',
    queue: env.AFT_QUEUE,
    concurrency: env.AFT_CONCURRENCY,
    // beside GPU jobs, automatic selection would put CPU jobs on the GPU too (aft-core picks webgpu when a hardware
    // adapter is present): wasm, unless the operator chose
    backend: gpus > 0 ? (env.AFT_BACKEND ?? 'wasm') : env.AFT_BACKEND,
  };
  if (gpus === 0) return [cpu];
  return [cpu, { kind: 'gpu', queue: gpuQueueName(env.AFT_QUEUE), concurrency: gpus, backend: env.AFT_GPU_BACKEND }];
}
