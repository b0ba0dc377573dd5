/**
 * This worker in the fleet registry (libs/queue/src/fleet.ts; docs/architecture.md, "Workers anywhere"): who it is
 * (host, pid, version), what it trains on (its pools' backends, the GPU adapter once a job has found it), what it
 * has (cores, memory, concurrency, GPUs) and the jobs in hand, refreshed every `AFT_HEARTBEAT_MS` and at once when
 * a job starts or ends. Nothing here reaches Postgres or the API: the record is all a worker tells about itself.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, hostname, totalmem } from 'node:os';
import { resolve } from 'node:path';
import type { Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { FleetHeartbeat, type FleetJob, type WorkerRecord } from '@aft/queue';
import type { WorkerEnv } from './env';
import type { TrainingPool } from './pools';

const ROOT = resolve(import.meta.dirname, '../../..');

/** The package version, and the commit when the checkout is a git one (two small file reads at start). */
export function workerVersion(root = ROOT): string {
  let version = '0.0.0';
  try {
    version =
      (JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { version?: string }).version ?? version;
  } catch {
    // a bundle without its package.json: the version stays unknown
  }
  try {
    const head = readFileSync(resolve(root, '.git/HEAD'), 'utf8').trim();
    const ref = head.startsWith('ref: ') ? head.slice(5) : null;
    const sha = ref
      ? existsSync(resolve(root, '.git', ref))
        ? readFileSync(resolve(root, '.git', ref), 'utf8').trim()
        : null
      : head;
    if (sha && /^[0-9a-f]{40}$/.test(sha)) version += `+${sha.slice(0, 8)}`;
  } catch {
    // not a git checkout (an image): the package version alone
  }
  return version;
}

export interface FleetMember {
  id: string;
  heartbeat: FleetHeartbeat;
  stop(): Promise<void>;
}

/** Registers this worker and keeps its record fresh until `stop` (a graceful shutdown takes it off the list). */
export function joinFleet(
  redis: Redis,
  env: WorkerEnv,
  pools: readonly { pool: TrainingPool; worker: Worker }[],
  log: (line: string) => void = () => undefined,
): FleetMember {
  const id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const startedAt = Date.now();
  const version = workerVersion();
  const jobs = new Map<string, FleetJob>();
  const found = new Map<string, { backend: string | null; adapter: string | null }>();

  const snapshot = (): Omit<WorkerRecord, 'lastSeen'> => ({
    id,
    host: hostname(),
    pid: process.pid,
    version,
    startedAt,
    heartbeatMs: env.AFT_HEARTBEAT_MS,
    pools: pools.map(({ pool, worker }) => ({
      kind: pool.kind,
      queue: pool.queue,
      concurrency: pool.concurrency,
      backend: found.get(pool.kind)?.backend ?? pool.backend ?? null,
      adapter: found.get(pool.kind)?.adapter ?? null,
      bullId: worker.id,
    })),
    resources: {
      cores: cpus().length,
      memoryMb: Math.round(totalmem() / 2 ** 20),
      concurrency: env.AFT_CONCURRENCY,
      gpus: env.AFT_WORKER_GPUS,
    },
    jobs: [...jobs.values()].slice(0, 256),
  });

  let lastError = '';
  const heartbeat = new FleetHeartbeat(redis, env.AFT_QUEUE, snapshot, (e) => {
    // once per kind of failure: a Redis outage would otherwise log every few seconds
    if (e.message !== lastError) log(`fleet heartbeat failed: ${e.message}`);
    lastError = e.message;
  });

  for (const { pool, worker } of pools) {
    const done = (job: Job | undefined) => {
      if (job?.id && jobs.delete(job.id)) void heartbeat.beat();
    };
    worker.on('active', (job) => {
      if (!job.id) return;
      jobs.set(job.id, { runId: job.id, queue: pool.queue, since: Date.now() });
      void heartbeat.beat();
    });
    worker.on('completed', done);
    worker.on('failed', done);
    // a job process says where it trains (processor.ts): the backend automatic selection chose, the GPU adapter
    worker.on('progress', (_job, progress) => {
      const placed = (progress as { placement?: Record<string, string> } | null)?.placement;
      if (!placed) return;
      found.set(pool.kind, { backend: placed['backend'] ?? null, adapter: placed['backend.adapter'] ?? null });
    });
  }

  heartbeat.start(env.AFT_HEARTBEAT_MS);
  return {
    id,
    heartbeat,
    stop: () => heartbeat.stop(id),
  };
}
