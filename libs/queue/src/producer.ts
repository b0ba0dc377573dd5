import { randomBytes } from 'node:crypto';
import { FlowProducer, Queue, type FlowJob, type JobsOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import {
  releaseJobPayload,
  resourcesSpec,
  trainJobPayload,
  wantsGpu,
  type AlignJobConfig,
  type ReleaseJobInput,
  type ReleaseJobPayload,
  type ResourcesInput,
  type TrainJobInput,
  type TrainJobPayload,
} from './jobs';
import { AlertQueue, alertsQueueName, type AlertQueueOptions } from './alerts';
import { redisTimeout as timeout } from './timeout';
import { readFleet, type FleetSnapshot } from './fleet';

export const QUEUE_RUNS = 'aft-runs';
/** Light jobs the worker runs in its own process (a sweep parent's release). */
export const controlQueueName = (runs: string) => `${runs}-control`;
/**
 * Training jobs that asked for a GPU (`resources: { gpu: 1 }`): only workers started with `AFT_WORKER_GPUS` take
 * them, that many at a time (docs/architecture.md, "GPU jobs").
 */
export const gpuQueueName = (runs: string) => `${runs}-gpu`;
/** The queue a training job goes to, by what it asks for. */
export const trainQueueName = (runs: string, resources: ResourcesInput | undefined) =>
  wantsGpu(resources) ? gpuQueueName(runs) : runs;
/** Pub/sub channel on which producers ask every worker to abort a run in progress. */
export const cancelChannel = (runs: string) => `${runs}:cancel`;

/** A unique queue name for tests: `aft-runs-test-3f9a…`. */
export function testQueueName(base = QUEUE_RUNS): string {
  return `${base}-test-${randomBytes(4).toString('hex')}`;
}

/** Removes a test's queues (every job of both) and closes its producer; a producer never made is left alone. */
export async function dropTestQueues(producer: JobProducer | undefined): Promise<void> {
  if (!producer) return;
  await producer.runs.obliterate({ force: true }).catch(() => undefined);
  await producer.gpu.obliterate({ force: true }).catch(() => undefined);
  await producer.control.obliterate({ force: true }).catch(() => undefined);
  await producer.alerts.queue.obliterate({ force: true }).catch(() => undefined);
  await producer.close();
}

/**
 * A worker's connection must wait out Redis restarts (BullMQ requires `maxRetriesPerRequest: null`);
 * a producer's should fail fast so an API request gets an error instead of hanging.
 */
export function createRedis(url: string, role: 'worker' | 'producer'): Redis {
  const opts: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 5_000 };
  const redis = new Redis(url, opts);
  // without a listener ioredis reports every failed reconnect as an unhandled error; say it once per outage
  let down = false;
  redis.on('error', (e) => {
    if (!down) console.warn(`[redis ${role}] ${url.replace(/\/\/[^@]*@/, '//')}: ${e.message}`);
    down = true;
  });
  redis.on('ready', () => (down = false));
  return redis;
}

export { ENQUEUE_TIMEOUT_MS } from './timeout';

/** Infrastructure failures (the API or Redis away, a full disk) retry with exponential backoff: 2 s, 4 s, 8 s … */
export const TRAIN_JOB_OPTIONS: JobsOptions = {
  attempts: 6,
  backoff: { type: 'exponential', delay: 2_000 },
  removeOnComplete: { age: 7 * 24 * 3600 },
  removeOnFail: { age: 30 * 24 * 3600 },
};

/** Children of a flow: the parent goes ahead when a child fails or is canceled, and decides what that means. */
const CHILD_OPTIONS: JobsOptions = { ...TRAIN_JOB_OPTIONS, ignoreDependencyOnFailure: true };

/**
 * Alignment runs in `lanes` chains: each chain is a nested flow, so its runs train one after another; on the GPU queue
 * when the release asks for it. `queue` is the CPU training queue's name.
 */
export function alignLanes(queue: string, release: ReleaseJobPayload): FlowJob[] {
  const queueName = trainQueueName(queue, release.resources);
  const lanes: ReleaseJobPayload['runs'][] = Array.from(
    { length: Math.min(release.lanes, release.runs.length) },
    () => [],
  );
  release.runs.forEach((r, i) => lanes[i % lanes.length]!.push(r));
  return lanes.map((lane) => {
    let flow: FlowJob | null = null;
    for (const r of lane) {
      const data: TrainJobPayload = {
        kind: 'align',
        runId: r.runId,
        runToken: r.runToken,
        sweepId: release.sweepId,
        parentRunId: release.parentRunId,
      };
      flow = {
        name: 'train',
        queueName,
        data,
        opts: { ...CHILD_OPTIONS, jobId: r.runId },
        children: flow ? [flow] : undefined,
      };
    }
    return flow!;
  });
}

export interface SweepParentJob {
  vft: TrainJobInput & { kind: 'vft' };
  /** Where the VFT parent trains (its alignment runs: `release.resources`). */
  resources?: ResourcesInput;
  release: ReleaseJobInput;
}

/** The producer side of the queues: single runs, whole sweeps, cancellation. */
export class JobProducer {
  /** Training jobs on CPUs. */
  readonly runs: Queue;
  /** Training jobs that asked for a GPU. */
  readonly gpu: Queue;
  readonly control: Queue;
  /** Alert firings (alerts.ts), on the queue beside this one. */
  readonly alerts: AlertQueue;
  private readonly flows: FlowProducer;

  constructor(
    private readonly redis: Redis,
    readonly queueName: string = QUEUE_RUNS,
    alertOptions: AlertQueueOptions = {},
  ) {
    this.runs = new Queue(queueName, { connection: redis });
    this.gpu = new Queue(gpuQueueName(queueName), { connection: redis });
    this.alerts = new AlertQueue(redis, alertsQueueName(queueName), alertOptions);
    this.control = new Queue(controlQueueName(queueName), { connection: redis });
    this.flows = new FlowProducer({ connection: redis });
  }

  /**
   * Enqueues one run's training job, on the GPU queue when `resources` asks for one; the job id is the run id, so
   * enqueueing twice is a no-op.
   */
  async enqueueRun(payload: TrainJobInput, resources?: ResourcesInput): Promise<string> {
    const data = trainJobPayload.parse(payload);
    const queue = wantsGpu(resourcesSpec.parse(resources ?? {})) ? this.gpu : this.runs;
    const job = await timeout(queue.add('train', data, { ...TRAIN_JOB_OPTIONS, jobId: data.runId }), 'enqueue a run');
    return job.id ?? data.runId;
  }

  /**
   * Enqueues a sweep: per VFT parent, a flow whose parent is the release job (control queue) and whose child is the
   * VFT job (on the GPU queue when `resources` asks for one). When the VFT job has trained and sampled, the release
   * job enqueues the alignment runs (`alignLanes`), where `release.resources` says. A flow spans queues: the release
   * job waits for its child wherever that trains.
   */
  async enqueueSweep(parents: readonly SweepParentJob[]): Promise<void> {
    const flows = this.flows.addBulk(
      parents.map((p) => {
        const release = releaseJobPayload.parse(p.release);
        const vft = trainJobPayload.parse(p.vft);
        const queueName = trainQueueName(this.queueName, resourcesSpec.parse(p.resources ?? {}));
        return {
          name: 'release',
          queueName: this.control.name,
          data: release,
          opts: {
            jobId: `release-${vft.runId}`,
            attempts: 10,
            backoff: { type: 'exponential', delay: 1_000 },
            removeOnComplete: { age: 7 * 24 * 3600 },
          },
          children: [{ name: 'train', queueName, data: vft, opts: { ...CHILD_OPTIONS, jobId: vft.runId } }],
        };
      }),
    );
    await timeout(flows, 'enqueue a sweep');
  }

  /** Enqueues the alignment runs waiting for a parent (what a release job does, with the payload it parsed). */
  async enqueueLanes(release: ReleaseJobInput): Promise<void> {
    await this.flows.addBulk(alignLanes(this.queueName, releaseJobPayload.parse(release)));
  }

  /**
   * Stops runs: a job still waiting is removed; a job in progress is aborted by the worker that holds it (its
   * processor sees an AbortSignal between steps). Jobs waiting inside a flow stay and are skipped when they come
   * up, because their runs are already marked canceled.
   */
  async cancel(runIds: readonly string[]): Promise<void> {
    if (runIds.length) await timeout(this.cancelNow(runIds), 'cancel runs');
  }

  private async cancelNow(runIds: readonly string[]): Promise<void> {
    for (const id of runIds) {
      const job = (await this.runs.getJob(id)) ?? (await this.gpu.getJob(id));
      const state = job ? await job.getState() : null;
      if (job && (state === 'waiting' || state === 'delayed' || state === 'prioritized') && !job.parent) {
        await job.remove().catch(() => undefined); // taken by a worker meanwhile: the broadcast below stops it
      }
    }
    await this.redis.publish(cancelChannel(this.queueName), JSON.stringify({ runIds }));
  }

  /** The workers registered on these queues and the jobs they hold (fleet.ts). */
  fleet(): Promise<FleetSnapshot> {
    return timeout(readFleet(this.redis, this.queueName, [this.runs, this.gpu]), 'read the fleet');
  }

  /** Closes the queues and the Redis connection the producer was given (it owns it). */
  async close(): Promise<void> {
    await Promise.all([
      this.runs.close(),
      this.gpu.close(),
      this.control.close(),
      this.flows.close(),
      this.alerts.close(),
    ]);
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

export type { AlignJobConfig };
