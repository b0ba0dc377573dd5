/**
 * The worker process: takes training jobs from the BullMQ queue. Closes gracefully on SIGINT/SIGTERM (the job
 * in progress finishes its step and is released), and always has an `error` listener.
 *
 * Training itself arrives with the aft-core and jobs issues; until then a job fails at once, unrecoverably,
 * with a message that says so — it is never retried or reported as done.
 */
import { UnrecoverableError, Worker } from 'bullmq';
import { createRedis, trainJobPayload } from '@aft/queue';
import { loadEnv } from './env';

const env = loadEnv();
const connection = createRedis(env.REDIS_URL, 'worker');

const worker = new Worker(
  env.AFT_QUEUE,
  async (job) => {
    const parsed = trainJobPayload.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`bad job payload: ${parsed.error.message}`);
    throw new UnrecoverableError('this worker cannot train yet: the aft-core trainer is not part of this build');
  },
  { connection, concurrency: env.AFT_CONCURRENCY },
);

worker.on('error', (e) => console.error('[worker] error:', e.message));
worker.on('failed', (job, e) => console.error(`[worker] job ${job?.id} failed: ${e.message}`));
worker.on('ready', () => console.log(`[worker] listening on queue ${env.AFT_QUEUE} (concurrency ${env.AFT_CONCURRENCY})`));

let closing = false;
async function shutdown(signal: string) {
  if (closing) return;
  closing = true;
  console.log(`[worker] ${signal}: closing`);
  await worker.close();
  connection.disconnect();
  process.exit(0);
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
