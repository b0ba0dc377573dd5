import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { storageEnv } from '@aft/storage';

/** aft-core's backends (its BACKENDS; not imported: that entry loads TensorFlow, which this process must not). */
const BACKEND = z.enum(['tensorflow', 'webgpu', 'wasm', 'cpu']);

/** The worker's settings, validated once at start. The only place this app reads process.env. */
const schema = z.object({
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** The platform's API, where runs report (through libs/tracker, each job with its own run token: no key here). */
  AFT_URL: z.string().url().default('http://127.0.0.1:3000'),
  AFT_QUEUE: z.string().min(1).default('aft-runs'),
  /** Training jobs at once; each runs in its own process. Defaults to the number of cores. */
  AFT_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(cpus().length),
  /** GPU jobs at once, from `<AFT_QUEUE>-gpu`, besides the CPU jobs; 0 (the default) takes none (pools.ts). */
  AFT_WORKER_GPUS: z.coerce.number().int().min(0).max(64).default(0),
  /** The backend GPU jobs train on. */
  AFT_GPU_BACKEND: BACKEND.default('webgpu'),
  /** The backend of CPU jobs, when the operator sets one; on a GPU worker it defaults to wasm (pools.ts). */
  AFT_BACKEND: z.union([z.literal('').transform(() => undefined), BACKEND]).optional(),
  /** The shared artifact store (AFT_ARTIFACT_URL) and how to reach it (AWS_*): libs/storage/src/config.ts. */
  ...storageEnv,
  /** The artifact store: checkpoints and sample sets, one folder per run. */
  AFT_ARTIFACT_DIR: z
    .string()
    .min(1)
    .default('artifacts')
    .transform((p) => resolve(p)),
  /** How long a job's lock lasts without renewal; a worker that dies loses its jobs after this long. */
  AFT_LOCK_MS: z.coerce.number().int().min(1000).default(30_000),
  /** How often a worker looks for stalled jobs (those whose worker died) to take them back. */
  AFT_STALLED_MS: z.coerce.number().int().min(500).default(30_000),
  /** How often this worker refreshes its fleet record (fleet.ts); the record expires after three missed beats. */
  AFT_HEARTBEAT_MS: z.coerce.number().int().min(100).max(60_000).default(5_000),
});
export type WorkerEnv = z.infer<typeof schema>;

export function loadEnv(env: Record<string, string | undefined> = process.env): WorkerEnv {
  const parsed = schema.safeParse(env);
  if (!parsed.success) throw new Error(`invalid environment: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** A job process's environment: the worker's own, with `AFT_BACKEND` set to its pool's backend when it has one. */
export function jobProcessEnv(backend: string | undefined, from = process.env): NodeJS.ProcessEnv {
  return backend ? { ...from, AFT_BACKEND: backend } : { ...from };
}
