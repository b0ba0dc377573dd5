/**
 * The alerts consumer of the worker process (docs/architecture.md, "Alerts"): it delivers the firings on the alerts
 * queue beside the training queue. The worker touches no database, so each attempt is claimed from the platform
 * and reported back over HTTP (`POST <AFT_URL>/api/alerts/delivery`) with the firing's own token; the platform
 * signs what is sent. `deliverAlert` (libs/queue) is the attempt itself.
 */
import type { ConnectionOptions } from 'bullmq';
import {
  alertsQueueName,
  claimAnswer,
  createAlertWorker,
  privateWebhooksAllowed,
  type AlertDeliveryApi,
} from '@aft/queue';
import type { WorkerEnv } from './env';

/** The platform's delivery endpoint over HTTP; an answer other than 200 fails the attempt (BullMQ retries it). */
export function httpDeliveryApi(apiUrl: string, timeoutMs = 15_000): AlertDeliveryApi {
  const endpoint = new URL('/api/alerts/delivery', apiUrl).toString();
  const call = async (body: Record<string, unknown>): Promise<unknown> => {
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) throw new Error(`${endpoint} answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
    return res.json();
  };
  return {
    claim: async (job) => claimAnswer.parse(await call({ op: 'claim', ...job })),
    report: async (job, r) => {
      await call({ op: 'report', ...job, ...r });
    },
  };
}

/** Starts delivering the alerts of `AFT_QUEUE`'s environment. */
export function startAlertWorker(connection: ConnectionOptions, env: Pick<WorkerEnv, 'AFT_QUEUE' | 'AFT_URL'>) {
  return createAlertWorker(connection, alertsQueueName(env.AFT_QUEUE), httpDeliveryApi(env.AFT_URL), {
    allowPrivate: privateWebhooksAllowed(),
  });
}
