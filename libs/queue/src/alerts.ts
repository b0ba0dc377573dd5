/**
 * The alerts queue (docs/architecture.md, "Alerts"): one job per firing, whose id is the firing's delivery id, so a
 * firing is enqueued once however often it is enqueued. The job carries no address, body or secret: the consumer
 * claims each attempt from the platform with the firing's token (the server counts the attempt and signs what to
 * send with the rule's secret, which never leaves Postgres), POSTs it, and reports how it went.
 */
import { UnrecoverableError, Worker, Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { redisTimeout } from './timeout';
import { answerSnippet, postWebhook, webhookErrorClass, WebhookRefusedError } from './webhook';

/** The alerts queue beside a runs queue (`aft-runs-alerts`): one per environment, as the control queue. */
export const alertsQueueName = (runs: string) => `${runs}-alerts`;

export const alertJobPayload = z.object({
  deliveryId: z.string().min(1).max(64),
  token: z.string().startsWith('aftdl_', 'token must be a delivery token').max(100),
});
export type AlertJobPayload = z.infer<typeof alertJobPayload>;

export interface AlertQueueOptions {
  /** Attempts per firing (default 8). */
  attempts?: number;
  /** The first retry's delay; each next one doubles (default 5 s: 5, 10, 20 … 320 s, about 10 minutes in all). */
  backoffMs?: number;
}

/** The producer side: the API enqueues each firing it records. */
export class AlertQueue {
  readonly queue: Queue;
  private readonly jobOptions: JobsOptions;

  constructor(redis: Redis, name: string, opts: AlertQueueOptions = {}) {
    this.queue = new Queue(name, { connection: redis });
    this.jobOptions = {
      attempts: Math.max(5, opts.attempts ?? 8),
      backoff: { type: 'exponential', delay: opts.backoffMs ?? 5_000 },
      removeOnComplete: { age: 7 * 24 * 3600 },
      removeOnFail: { age: 30 * 24 * 3600 },
    };
  }

  /** Queues firings; rejects after ENQUEUE_TIMEOUT_MS when Redis does not answer (the caller notes them unqueued). */
  async enqueue(firings: readonly AlertJobPayload[]): Promise<void> {
    if (!firings.length) return;
    const jobs = firings.map((f) => {
      const data = alertJobPayload.parse({ deliveryId: f.deliveryId, token: f.token });
      return { name: 'deliver', data, opts: { ...this.jobOptions, jobId: data.deliveryId } };
    });
    await redisTimeout(this.queue.addBulk(jobs), 'enqueue alerts');
  }

  /** Which of these deliveries have a job in the queue, in any state (waiting, delayed, active, done, failed). */
  async queued(deliveryIds: readonly string[]): Promise<Set<string>> {
    const jobs = await redisTimeout(Promise.all(deliveryIds.map((id) => this.queue.getJob(id))), 'look up alerts');
    return new Set(deliveryIds.filter((_, i) => jobs[i]));
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

/** One attempt as the platform hands it out: the address, the signed headers and the body. */
export interface ClaimedAttempt {
  attempt: number;
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** The platform's answer to a claim, as the consumer parses it (it comes over HTTP). */
export const claimAnswer = z.union([
  z.object({ done: z.string().max(500) }),
  z.object({
    attempt: z.number().int().min(1),
    url: z.string().max(4000),
    headers: z.record(z.string().max(100), z.string().max(500)),
    body: z.string(),
  }),
]);

export interface AttemptReport {
  attempt: number;
  /** The receiver's status code; null when none came (network error, timeout, refused address). */
  status: number | null;
  error: string | null;
  delivered: boolean;
}

/**
 * What the consumer needs of the platform: over HTTP in the worker (apps/worker/src/alerts.ts), through the API's
 * own functions in tests. `claim` answers `{ done }` when there is nothing to send (delivered already, the rule
 * disabled or deleted).
 */
export interface AlertDeliveryApi {
  claim(job: AlertJobPayload): Promise<ClaimedAttempt | { done: string }>;
  report(job: AlertJobPayload, r: AttemptReport): Promise<void>;
}

export interface DeliverOptions {
  /** Longest one POST may take (default 10 s). */
  timeoutMs?: number;
  allowPrivate: boolean;
  /** The first pause before a failed report is tried again (default 500 ms; then twice that). */
  reportRetryMs?: number;
}

/** Receivers that may answer otherwise later: server errors, timeouts, rate limits. */
const retryable = (status: number) => status >= 500 || status === 408 || status === 429;

/** What an attempt came to, as the delivery log keeps it (members read it); `final` when retrying cannot help. */
interface Outcome {
  status: number | null;
  error: string | null;
  final: boolean;
}

function outcome(r: { status: number; snippet: string }, url: string): Outcome {
  // Node takes any three digits from a receiver; the log keeps HTTP's own range
  if (r.status < 100 || r.status > 599)
    return { status: null, error: `HTTP ${r.status}: not an HTTP status`, final: true };
  if (r.status >= 200 && r.status < 300) return { status: r.status, error: null, final: false };
  const why = r.status >= 300 && r.status < 400 ? ' (redirects are not followed)' : '';
  const snippet = answerSnippet(r.snippet, url);
  return {
    status: r.status,
    error: `HTTP ${r.status}${why}${snippet ? `: ${snippet}` : ''}`,
    final: !retryable(r.status),
  };
}

/** Reports an attempt, trying twice more on failure; false when it could not (logged). */
async function reportAttempt(api: AlertDeliveryApi, job: AlertJobPayload, r: AttemptReport, retryMs: number) {
  for (let i = 0; ; i++) {
    try {
      await api.report(job, r);
      return true;
    } catch (e) {
      if (i >= 2) {
        console.error(
          `[alerts] delivery ${job.deliveryId}: attempt ${r.attempt} not reported: ${(e as Error).message}`,
        );
        return false;
      }
      await new Promise((done) => setTimeout(done, retryMs * 2 ** i));
    }
  }
}

/**
 * One attempt of a firing: claim, POST, report. Resolves when delivered (or nothing is left to send); throws to
 * have BullMQ retry with backoff, or UnrecoverableError when retrying cannot help (a refused address, a 4xx, a
 * redirect, which is not followed). A POST that was delivered is never sent again because its report failed: the
 * attempt resolves all the same (the log then shows it pending).
 */
export async function deliverAlert(
  data: unknown,
  api: AlertDeliveryApi,
  opts: DeliverOptions,
): Promise<{ delivered: boolean; status?: number; skipped?: string }> {
  const job = alertJobPayload.parse(data);
  const claim = await api.claim(job);
  if ('done' in claim) return { delivered: false, skipped: claim.done };
  let result: Outcome;
  try {
    const r = await postWebhook(claim.url, {
      headers: claim.headers,
      body: claim.body,
      timeoutMs: opts.timeoutMs ?? 10_000,
      allowPrivate: opts.allowPrivate,
    });
    result = outcome(r, claim.url);
  } catch (e) {
    result = { status: null, error: webhookErrorClass(e), final: e instanceof WebhookRefusedError };
    console.warn(`[alerts] delivery ${job.deliveryId}, attempt ${claim.attempt}: ${(e as Error).message}`);
  }
  const { status, error, final } = result;
  const delivered = error === null;
  await reportAttempt(api, job, { attempt: claim.attempt, status, error, delivered }, opts.reportRetryMs ?? 500);
  if (delivered) return { delivered, status: status! };
  throw final ? new UnrecoverableError(error!) : new Error(error!);
}

/** A BullMQ worker that delivers the queue's firings (the worker process runs one; tests run their own). */
export function createAlertWorker(
  connection: ConnectionOptions,
  queueName: string,
  api: AlertDeliveryApi,
  opts: DeliverOptions & { concurrency?: number },
): Worker {
  return new Worker(queueName, (job) => deliverAlert(job.data, api, opts), {
    connection,
    concurrency: opts.concurrency ?? 8,
  });
}
