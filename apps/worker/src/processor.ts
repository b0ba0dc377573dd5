/**
 * The sandboxed processor: BullMQ runs this file in a child process per concurrent job, so training never starves
 * the worker's event loop (which keeps renewing the job's lock; a starved lock makes a job "stalled" and run twice).
 */
import { DelayedError, UnrecoverableError, type SandboxedJob } from 'bullmq';
import { trainJobPayload, type TrainResult } from '@aft/queue';
import { Transport } from '@aft/tracker';
import { loadEnv } from './env';
import { ArtifactStore } from './store';
import { PermanentError, ShutdownError } from './errors';
import { runTrainJob } from './train';

// If the worker process dies (kill -9), its IPC channel closes: stop too, so the job's next owner is alone.
if (process.send) process.on('disconnect', () => process.exit(1));

const env = loadEnv();
const store = new ArtifactStore(env.AFT_ARTIFACT_DIR);

/**
 * A payload the worker cannot read (written by another version, or by hand) still names its run and token: fail
 * the run with the reason, so it is not left queued forever.
 */
async function failUnparsed(data: unknown, why: string): Promise<void> {
  const { runId, runToken } = (data ?? {}) as { runId?: unknown; runToken?: unknown };
  if (typeof runId !== 'string' || typeof runToken !== 'string') return;
  await new Transport({ url: env.AFT_URL, apiKey: runToken, retryForMs: 10_000 })
    .call('runs.setStatus', { id: runId, status: 'failed', error: why.slice(0, 2000) })
    .catch(() => undefined);
}

export default async function process_(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<TrainResult> {
  const parsed = trainJobPayload.safeParse(job.data);
  if (!parsed.success) {
    const why = `bad job payload: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`;
    await failUnparsed(job.data, why);
    throw new UnrecoverableError(why);
  }
  const attempts = job.opts.attempts ?? 1;
  try {
    return await runTrainJob(
      parsed.data,
      {
        store,
        trackerUrl: env.AFT_URL,
        queue: job.queueName,
        signal,
        log: (line) => void job.log(line),
        onPlaced: (placement) => void job.updateProgress({ placement }),
      },
      { final: job.attemptsMade + 1 >= attempts },
    );
  } catch (e) {
    if (e instanceof PermanentError) throw new UnrecoverableError(e.message);
    if (e instanceof ShutdownError) {
      // back to the queue without using up an attempt; the next worker resumes from the checkpoint just saved
      await job.moveToDelayed(Date.now() + 500, token);
      throw new DelayedError(e.message);
    }
    throw e;
  }
}
