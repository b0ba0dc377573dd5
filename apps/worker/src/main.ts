/**
 * The worker process. Training jobs run in sandboxed processors (one child process per concurrent job), in a CPU
 * pool and, with `AFT_WORKER_GPUS`, a GPU pool (pools.ts); a sweep parent's release jobs and alert deliveries
 * (alerts.ts) run here. Cancel requests arrive on a Redis channel and abort the job's processor.
 * SIGINT/SIGTERM close gracefully: no new jobs are taken, jobs in progress stop at their next step and are
 * released to run again (they resume from their checkpoints).
 */
import { fileURLToPath } from 'node:url';
import { Worker } from 'bullmq';
import { cancelChannel, controlQueueName, createRedis, JobProducer } from '@aft/queue';
import { jobProcessEnv, loadEnv } from './env';
import { trainingPools } from './pools';
import { processRelease } from './release';
import { startAlertWorker } from './alerts';
import { SHUTDOWN } from './errors';
import { joinFleet } from './fleet';

const env = loadEnv();
const connection = createRedis(env.REDIS_URL, 'worker');
const subscriber = createRedis(env.REDIS_URL, 'worker');
const producer = new JobProducer(createRedis(env.REDIS_URL, 'worker'), env.AFT_QUEUE);
const tag = `[worker ${process.pid}]`;

const processorFile = fileURLToPath(
  new URL(`./processor${import.meta.url.endsWith('.js') ? '.js' : '.ts'}`, import.meta.url),
);
const pools = trainingPools(env).map((pool) => ({
  pool,
  worker: new Worker(pool.queue, processorFile, {
    connection,
    concurrency: pool.concurrency,
    lockDuration: env.AFT_LOCK_MS,
    stalledInterval: env.AFT_STALLED_MS,
    maxStalledCount: 3,
    ...(pool.backend ? { workerForkOptions: { env: jobProcessEnv(pool.backend) } } : {}),
  }),
}));
const training = pools.map((p) => p.worker);
const control = new Worker(controlQueueName(env.AFT_QUEUE), (job) => processRelease(job, producer, env.AFT_URL), {
  connection,
  concurrency: 4,
});

const alerts = startAlertWorker(connection, env);

for (const w of [...training, control, alerts]) {
  w.on('error', (e) => console.error(`${tag} error:`, e.message));
  w.on('failed', (job, e) =>
    console.error(`${tag} job ${job?.id} failed (attempt ${job?.attemptsMade}): ${e.message}`),
  );
}
for (const { pool, worker } of pools) {
  worker.on('active', (job) =>
    console.log(`${tag} job ${job.id} started (${(job.data as { kind?: string }).kind}, ${pool.kind})`),
  );
  worker.on('completed', (job, res) =>
    console.log(`${tag} job ${job.id} ${(res as { status?: string }).status ?? 'done'}`),
  );
  worker.on('ready', () =>
    console.log(
      `${tag} listening on ${pool.queue} (${pool.kind}, concurrency ${pool.concurrency}, backend ${pool.backend ?? 'automatic'}, artifacts in ${env.AFT_ARTIFACT_DIR})`,
    ),
  );
}

const fleet = joinFleet(connection, env, pools, (line) => console.warn(`${tag} ${line}`));

await subscriber.subscribe(cancelChannel(env.AFT_QUEUE));
subscriber.on('message', (_channel, message) => {
  try {
    const { runIds } = JSON.parse(message) as { runIds: string[] };
    for (const id of runIds)
      if (training.some((w) => w.cancelJob(id, 'canceled by a user'))) console.log(`${tag} canceling ${id}`);
  } catch (e) {
    console.error(`${tag} bad cancel message: ${(e as Error).message}`);
  }
});

let closing = false;
async function shutdown(signal: string) {
  if (closing) return;
  closing = true;
  console.log(`${tag} ${signal}: closing`);
  for (const w of training) w.cancelAllJobs(SHUTDOWN);
  await Promise.allSettled([...training.map((w) => w.close()), control.close(), alerts.close(), producer.close()]);
  // listed until its jobs are released, then off the list: a worker that left is not a dead one
  await fleet.stop().catch(() => undefined);
  subscriber.disconnect();
  connection.disconnect();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
