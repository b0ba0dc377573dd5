/**
 * Firings whose job never reached the alerts queue — Redis away or silent when they fired, or the server stopped
 * between storing a firing and queueing it — would stay pending for good, and the once-per-run rule would keep
 * them from firing again. Each web server with a queue looks for them every minute (docs/architecture.md,
 * "Alerts"): a delivery pending for over a minute, never attempted, whose job the queue does not hold (in any
 * state, finished ones included) gets a fresh token — the first was only ever in the lost job — and its job.
 * Servers race safely: a token is renewed only while it is still the one read, so one of them queues it.
 */
import { markAlertUnqueued, renewAlertToken, unattemptedAlertDeliveries, type Db } from '@aft/db';
import type { AlertJobPayload, AlertQueue, JobProducer } from '@aft/queue';

export const REQUEUE = {
  /** Age before a pending delivery counts as lost: far past ENQUEUE_TIMEOUT_MS, so never one being queued. */
  afterMs: 60_000,
  /**
   * Older ones are left alone: a day-old alert is noise, and the queue forgets finished jobs after 7 days (one whose
   * rule was disabled when its turn came finishes unattempted), so older ones could not be told from lost ones.
   */
  withinMs: 24 * 3600_000,
  batch: 100,
};

/** One pass: queues the lost deliveries again; how many. */
export async function requeueAlerts(db: Db, alerts: AlertQueue, o = REQUEUE): Promise<number> {
  const candidates = await unattemptedAlertDeliveries(db, o);
  if (!candidates.length) return 0;
  const held = await alerts.queued(candidates.map((d) => d.id));
  const renewed: AlertJobPayload[] = [];
  for (const d of candidates) {
    if (held.has(d.id)) continue;
    const token = await renewAlertToken(db, d.id, d.tokenHash);
    if (token) renewed.push({ deliveryId: d.id, token });
  }
  if (!renewed.length) return 0;
  try {
    await alerts.enqueue(renewed);
  } catch (e) {
    await markAlertUnqueued(
      db,
      renewed.map((r) => r.deliveryId),
      'not sent: the alerts queue is unreachable',
    );
    throw e;
  }
  return renewed.length;
}

/** Runs `requeueAlerts` every `everyMs` (one pass at a time) until the returned function is called. */
export function startAlertRequeue(db: Db, jobs: JobProducer, everyMs = REQUEUE.afterMs): () => void {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    requeueAlerts(db, jobs.alerts)
      .then((n) => n && console.warn(`[alerts] queued ${n} firing(s) again that had not reached the queue`))
      .catch((e: unknown) => console.error(`[alerts] queueing lost firings again: ${(e as Error).message}`))
      .finally(() => (busy = false));
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
