/**
 * Where alert rules fire (docs/architecture.md, "Alerts"): each write that can trigger one calls a single function
 * here after it has been stored — an event (`alertOnEvent`), a run's status (`alertOnStatus`), a metric batch
 * (`alertOnMetrics`). A firing is a pending delivery row, unique per rule and run (per sweep for sweep-finished), so
 * a retried write never fires twice; its job goes on the alerts queue. Nothing here fails the write that triggered
 * it (that write is stored, and a trainer would only retry it), nor holds its answer longer than ENQUEUE_TIMEOUT_MS.
 */
import { encodeNumber } from '@aft/contracts';
import {
  alertCandidates,
  markAlertUnqueued,
  recordAlertFirings,
  sweepRunCounts,
  sweepStatus,
  TERMINAL_STATUSES,
  type AlertCandidate,
  type AlertFiring,
  type Db,
  type MetricPoint,
  type NewAlertFiring,
  type PointColumns,
} from '@aft/db';
import { ENQUEUE_TIMEOUT_MS, type JobProducer } from '@aft/queue';
import type { AlertEvent } from './message';

/** What the hooks need of a request's context. */
export interface AlertContext {
  db: Db;
  jobs?: JobProducer | null;
  actor: { teamId: string };
}

/** Evidence larger than this (JSON characters) is replaced by its keys: an alert is a notice, not an export. */
const MAX_EVIDENCE_CHARS = 8_000;

function bounded(details: Record<string, unknown> | undefined): Record<string, unknown> {
  const d = details ?? {};
  if (JSON.stringify(d).length <= MAX_EVIDENCE_CHARS) return d;
  return { truncated: true, keys: Object.keys(d).slice(0, 50) };
}

/** The event a candidate rule reports. */
export function alertEvent(
  c: Pick<AlertCandidate, 'ruleId' | 'ruleName' | 'projectId' | 'projectName'> & Partial<AlertCandidate>,
  kind: string,
  more: { step?: number | null; evidence?: Record<string, unknown>; sweep?: AlertEvent['sweep'] } = {},
): AlertEvent {
  return {
    kind,
    rule: { id: c.ruleId, name: c.ruleName },
    project: { id: c.projectId, name: c.projectName },
    run: c.runId ? { id: c.runId, name: c.runName ?? '', status: c.runStatus ?? '' } : null,
    sweep: more.sweep ?? null,
    step: more.step ?? null,
    evidence: more.evidence ?? {},
    firedAt: new Date().toISOString(),
  };
}

const firing = (c: AlertCandidate, subject: string, event: AlertEvent): NewAlertFiring => ({
  ruleId: c.ruleId,
  projectId: c.projectId,
  kind: c.kind,
  subject,
  runId: c.runId,
  payload: event as unknown as Record<string, unknown>,
});

/**
 * Records the firings and queues their deliveries; the new ones are returned. A firing that could not be queued
 * stays pending with a note, and the web server queues it again a minute later (requeue.ts).
 */
export async function fireAlerts(ctx: AlertContext, firings: readonly NewAlertFiring[]): Promise<AlertFiring[]> {
  const fired = await recordAlertFirings(ctx.db, firings);
  if (!fired.length) return fired;
  const ids = fired.map((f) => f.deliveryId);
  if (!ctx.jobs) {
    await markAlertUnqueued(ctx.db, ids, 'not sent: this server has no job queue (REDIS_URL)');
    return fired;
  }
  try {
    await ctx.jobs.alerts.enqueue(fired);
  } catch (e) {
    // the delivery log is every member's to read: Redis's address and errors stay in the server's log
    console.error(`[alerts] ${ids.length} firing(s) not queued: ${(e as Error).message}`);
    await markAlertUnqueued(ctx.db, ids, 'not sent: the alerts queue is unreachable');
  }
  return fired;
}

/**
 * Runs a hook so that the write that called it answers within ENQUEUE_TIMEOUT_MS whatever happens to the hook: an
 * error is logged, and a hook still at work by then (the queue slow, a firing's row locked) finishes after the answer.
 */
async function guarded(what: string, fn: () => Promise<unknown>): Promise<void> {
  const work = fn().then(
    () => 'done' as const,
    (e: unknown) => {
      console.error(`[alerts] ${what}: ${(e as Error).message}`);
      return 'failed' as const;
    },
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), ENQUEUE_TIMEOUT_MS)));
  const outcome = await Promise.race([work, late]);
  clearTimeout(timer);
  if (outcome === 'late') console.warn(`[alerts] ${what}: still at work after ${ENQUEUE_TIMEOUT_MS} ms; answered`);
}

/** After an event is recorded: a `degradation-detected` fires the project's degradation rules for the run. */
export async function alertOnEvent(
  ctx: AlertContext,
  runId: string,
  e: { kind: string; step?: number | undefined; details?: Record<string, unknown> | undefined },
): Promise<void> {
  if (e.kind !== 'degradation-detected') return;
  await guarded('degradation-detected', async () => {
    const rules = await alertCandidates(ctx.db, ctx.actor.teamId, runId, e.kind);
    const evidence = bounded(e.details);
    await fireAlerts(
      ctx,
      rules.map((c) => firing(c, `run:${runId}`, alertEvent(c, e.kind, { step: e.step ?? null, evidence }))),
    );
  });
}

/**
 * After a run's status is set: `failed` fires run-failed rules; any ended status that leaves the run's sweep with
 * every run ended fires sweep-finished rules (once per sweep, whichever of its runs ends last).
 */
export async function alertOnStatus(
  ctx: AlertContext,
  runId: string,
  status: string,
  error?: string | null,
): Promise<void> {
  if (!(TERMINAL_STATUSES as readonly string[]).includes(status)) return;
  await guarded(`run ${status}`, async () => {
    if (status === 'failed') {
      const rules = await alertCandidates(ctx.db, ctx.actor.teamId, runId, 'run-failed');
      const evidence = error ? { error: error.slice(0, 2000) } : {};
      await fireAlerts(
        ctx,
        rules.map((c) => firing(c, `run:${runId}`, alertEvent(c, 'run-failed', { evidence }))),
      );
    }
    const rules = await alertCandidates(ctx.db, ctx.actor.teamId, runId, 'sweep-finished');
    const sweepId = rules[0]?.sweepId;
    if (!sweepId) return;
    const counts = await sweepRunCounts(ctx.db, sweepId);
    const swept = sweepStatus(counts);
    if (!(TERMINAL_STATUSES as readonly string[]).includes(swept)) return;
    const sweep = { id: sweepId, name: rules[0]!.sweepName ?? '', status: swept, counts };
    await fireAlerts(
      ctx,
      rules.map((c) => firing(c, `sweep:${sweepId}`, alertEvent(c, 'sweep-finished', { sweep }))),
    );
  });
}

const crosses = (value: number, op: string | null, threshold: number | null) =>
  threshold !== null && (op === 'above' ? value > threshold : op === 'below' ? value < threshold : false);

/**
 * After a metric batch is stored: the project's threshold rules on a key of the batch that have not fired for the
 * run are checked against its values (one indexed read when there are none); the crossing at the lowest step fires each.
 */
export async function alertOnMetrics(
  ctx: AlertContext,
  runId: string,
  batch: PointColumns | readonly MetricPoint[],
): Promise<void> {
  const points = Array.isArray(batch) ? (batch as readonly MetricPoint[]) : null;
  const cols = points ? null : (batch as PointColumns);
  const keys = cols ? [...new Set(cols.keys)] : [...new Set(points!.map((p) => p.key))];
  await guarded('metric-threshold', async () => {
    const rules = await alertCandidates(ctx.db, ctx.actor.teamId, runId, 'metric-threshold', keys);
    if (!rules.length) return;
    const n = cols ? cols.key.length : points!.length;
    const at = (i: number) =>
      cols ? { key: cols.keys[cols.key[i]!]!, step: cols.step[i]!, value: cols.value[i]! } : points![i]!;
    const firings: NewAlertFiring[] = [];
    for (const c of rules) {
      let first: { step: number; value: number } | null = null;
      for (let i = 0; i < n; i++) {
        const p = at(i);
        if (p.key === c.metricKey && crosses(p.value, c.op, c.threshold) && (!first || p.step < first.step)) first = p;
      }
      if (!first) continue;
      const evidence = { key: c.metricKey, value: encodeNumber(first.value), op: c.op, threshold: c.threshold };
      firings.push(firing(c, `run:${runId}`, alertEvent(c, 'metric-threshold', { step: first.step, evidence })));
    }
    await fireAlerts(ctx, firings);
  });
}
