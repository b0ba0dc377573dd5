/**
 * Queue contracts shared by the web app (producer) and the worker (consumer): queue names, job payload schemas
 * (both sides parse), and the Redis connection settings each side needs.
 */
import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { z } from 'zod';

export const QUEUE_RUNS = 'aft-runs';

/** A unique queue name for tests: `aft-runs-test-3f9a…`. */
export function testQueueName(base = QUEUE_RUNS): string {
  return `${base}-test-${randomBytes(4).toString('hex')}`;
}

export const trainJobPayload = z.object({
  runId: z.string().min(1).max(64),
  /** The run's resolved config; validated again by the trainer. */
  config: z.record(z.string(), z.unknown()),
});
export type TrainJobPayload = z.infer<typeof trainJobPayload>;

/**
 * A worker's connection must wait out Redis restarts (BullMQ requires `maxRetriesPerRequest: null`);
 * a producer's should fail fast so an API request gets an error instead of hanging.
 */
export function createRedis(url: string, role: 'worker' | 'producer'): Redis {
  const opts: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 5_000 };
  return new Redis(url, opts);
}

/** Enqueues a run's training job; the job id is the run id, so enqueueing twice is a no-op. */
export async function enqueueRun(queue: Queue, payload: TrainJobPayload): Promise<string> {
  const data = trainJobPayload.parse(payload);
  const job = await queue.add('train', data, {
    jobId: data.runId,
    attempts: 5,
    backoff: { type: 'exponential', delay: 2_000 },
    removeOnComplete: { age: 7 * 24 * 3600 },
    removeOnFail: { age: 30 * 24 * 3600 },
  });
  return job.id ?? data.runId;
}
