/**
 * Alerts when things go wrong: a hook never holds the write that triggered it past ENQUEUE_TIMEOUT_MS (its firing's
 * row locked, or Redis connected but silent); a firing that never reached the queue is queued again, once, by the
 * web server's pass, which leaves alone what the queue holds; a receiver's nonsense (status 999, a NUL in its answer)
 * is logged as a failure through the real delivery endpoint; a delivered POST is not sent again because its report
 * failed; and the delivery log shows a class of error to members, and only the status code to viewers.
 */
import { createServer, connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnrecoverableError } from 'bullmq';
import type { TestDatabase } from '@aft/db/testing';
import { recordAlertFirings, RunNotifier } from '@aft/db';
import {
  alertsQueueName,
  claimAnswer,
  createAlertWorker,
  createRedis,
  deliverAlert,
  dropTestQueues,
  ENQUEUE_TIMEOUT_MS,
  JobProducer,
  testQueueName,
  type AlertDeliveryApi,
} from '@aft/queue';
import {
  alertDeliveryApi,
  appRouter,
  createAlertDeliveryHandler,
  createCallerFactory,
  createContextInner,
  requeueAlerts,
} from '../src';
import { alertEvent } from '../src/alerts/fire';
import { createMember, createTeamWithKey } from '../src/testing';
import { DASHBOARD, startAlertStack } from './alert-stack';
import { startReceiver, until } from './alert-receiver';

process.env['AFT_ALERTS_ALLOW_PRIVATE'] = '1';

let stack: Awaited<ReturnType<typeof startAlertStack>>;
let t: TestDatabase;
let notifier: RunNotifier;
let producer: JobProducer;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let apiKey: string;
let memberId: string;
let viewerId: string;

const caller = (ctx: { apiKey?: string; userId?: string; jobs?: JobProducer }) =>
  createCallerFactory(appRouter)(
    createContextInner({
      db: t.db,
      notifier,
      apiKey: ctx.apiKey ?? null,
      userId: ctx.userId ?? null,
      jobs: ctx.jobs ?? producer,
    }),
  );

beforeAll(async () => {
  stack = await startAlertStack();
  ({ t, notifier, producer, receiver } = stack);
  apiKey = (await createTeamWithKey(t.db, 'lab')).key;
  memberId = (await createMember(t.db, 'lab', 'member')).user.id;
  viewerId = (await createMember(t.db, 'lab', 'viewer')).user.id;
});
afterAll(async () => {
  await stack?.close();
});

let n = 0;
/** A run in a fresh project with a rule of `kind` posting to a path of its own. */
async function ruleOnNewProject(kind: 'run-failed' | 'metric-threshold', extra: Record<string, unknown> = {}) {
  const run = await caller({ apiKey }).runs.create({ project: `p-${++n}-${Date.now()}`, config: {} });
  const path = `/hook-s3cr3t-${n}`;
  const { rule } = await caller({ userId: memberId }).alerts.create({
    projectId: run.projectId,
    name: `rule ${n}`,
    kind,
    url: `${receiver.url}${path}`,
    ...extra,
  });
  return { run, rule, path };
}

/** A firing recorded as a hook records it, not queued (what the worker would claim). */
async function unqueuedFiring(kind: 'run-failed' | 'metric-threshold' = 'run-failed') {
  const { run, rule, path } = await ruleOnNewProject(kind, kind === 'run-failed' ? {} : metricRule);
  const c = { ruleId: rule.id, ruleName: rule.name, projectId: run.projectId, projectName: run.project.name };
  const payload = { ...alertEvent(c, kind) };
  const [f] = await recordAlertFirings(t.db, [
    { ruleId: rule.id, projectId: run.projectId, kind, subject: `run:${run.id}`, runId: run.id, payload },
  ]);
  return { ...f!, path, run, job: { deliveryId: f!.deliveryId, token: f!.token } };
}
const metricRule = { metricKey: 'loss', op: 'above', threshold: 5 };

const row = (id: string) => t.db.prisma.alertDelivery.findUniqueOrThrow({ where: { id } });
const backdate = (id: string, interval: string) =>
  t.db.pool.query(`UPDATE alert_delivery SET created_at = now() - $2::interval WHERE id = $1`, [id, interval]);
const settle = (ms = 400) => new Promise((r) => setTimeout(r, ms));
async function timed(p: Promise<unknown>): Promise<number> {
  const t0 = Date.now();
  await p;
  return Date.now() - t0;
}

/** A TCP relay to the real Redis that can be made to swallow everything: connected, but never answering. */
async function silenceableRedis() {
  let silent = false;
  const sockets = new Set<Socket>();
  const relay = createServer((client) => {
    const redis = connect(6379, '127.0.0.1');
    for (const s of [client, redis]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => (client.destroy(), redis.destroy()));
    }
    client.on('data', (d) => silent || redis.write(d));
    redis.on('data', (d) => silent || client.write(d));
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  return {
    url: `redis://127.0.0.1:${(relay.address() as { port: number }).port}`,
    silence: () => (silent = true),
    close: () => {
      for (const s of sockets) s.destroy();
      relay.close();
    },
  };
}

describe('a hook never holds the write that triggered it', () => {
  it("answers within the bound while the firing's row is locked; the alert goes out once the lock is gone", async () => {
    const { run, rule, path } = await ruleOnNewProject('metric-threshold', metricRule);
    // another transaction inserting the same firing: the hook's insert waits for it
    const blocker = await t.db.pool.connect();
    await blocker.query('BEGIN');
    await blocker.query(
      `INSERT INTO alert_delivery (id, rule_id, project_id, kind, subject, token_hash)
       VALUES ($1, $2, $3, 'metric-threshold', $4, 'x')`,
      [`adlock${n}`, rule.id, run.projectId, `run:${run.id}`],
    );
    const release = () => blocker.query('ROLLBACK').finally(() => blocker.release());
    const safety = setTimeout(() => void release(), 3 * ENQUEUE_TIMEOUT_MS);
    const took = await timed(
      caller({ apiKey }).metrics.log({ runId: run.id, points: [{ key: 'loss', step: 4, value: 9 }] }),
    );
    clearTimeout(safety);
    await release();
    expect(took).toBeGreaterThanOrEqual(ENQUEUE_TIMEOUT_MS - 100);
    expect(took).toBeLessThan(ENQUEUE_TIMEOUT_MS + 1_500);
    await until(() => receiver.at(path).length === 1, 15_000, 'the POST after the lock');
    expect(JSON.parse(receiver.at(path)[0]!.body).aft).toMatchObject({ step: 4, run: { id: run.id } });
  });

  it('with Redis connected but silent: the write answers within the bound, the firing is noted not sent, and the next requeue pass sends it once', async () => {
    const relay = await silenceableRedis();
    const silentJobs = new JobProducer(createRedis(relay.url, 'producer'), producer.queueName);
    try {
      await silentJobs.alerts.queue.waitUntilReady();
      relay.silence();
      const { run, path } = await ruleOnNewProject('run-failed');
      const trainer = caller({ apiKey, jobs: silentJobs });
      const took = await timed(trainer.runs.setStatus({ id: run.id, status: 'failed', error: 'NaN' }));
      expect(took).toBeLessThan(ENQUEUE_TIMEOUT_MS + 1_500);
      expect((await caller({ apiKey }).runs.get({ id: run.id })).status).toBe('failed');
      // the enqueue itself gave up (without its timeout it would wait for good)
      const [d] = await until(async () => {
        const ds = await caller({ userId: memberId }).alerts.list({ projectId: run.projectId });
        return ds.deliveries[0]?.lastError ? ds.deliveries : null;
      }, 3_000);
      expect(d).toMatchObject({
        attempts: 0,
        deliveredAt: null,
        lastError: 'not sent: the alerts queue is unreachable',
      });

      // too young to be taken for lost; a minute on, the pass queues it with a fresh token
      expect(await requeueAlerts(t.db, producer.alerts)).toBe(0);
      const before = (await row(d!.id)).tokenHash;
      await backdate(d!.id, '2 minutes');
      expect(await requeueAlerts(t.db, producer.alerts)).toBe(1);
      expect((await row(d!.id)).tokenHash).not.toBe(before);
      await until(async () => (await row(d!.id)).deliveredAt, 15_000, 'the requeued delivery');
      expect(await requeueAlerts(t.db, producer.alerts)).toBe(0);
      await settle();
      expect(receiver.at(path)).toHaveLength(1);
      expect(await row(d!.id)).toMatchObject({ attempts: 1, lastStatus: 200, lastError: null });
    } finally {
      relay.close();
      await Promise.race([silentJobs.close().catch(() => undefined), settle(2_000)]);
    }
  });
});

describe('the requeue pass', () => {
  it('leaves alone a delivery the queue holds, one over a day old, and one whose rule is disabled', async () => {
    const idle = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), testQueueName());
    try {
      const held = await unqueuedFiring();
      await idle.alerts.enqueue([held]);
      const old = await unqueuedFiring();
      const disabled = await unqueuedFiring();
      await caller({ userId: memberId }).alerts.update({ id: disabled.ruleId, enabled: false });
      const lost = await unqueuedFiring();
      await backdate(held.deliveryId, '2 minutes');
      await backdate(old.deliveryId, '25 hours');
      await backdate(disabled.deliveryId, '2 minutes');
      await backdate(lost.deliveryId, '2 minutes');
      const hashes = async () =>
        Promise.all([held, old, disabled, lost].map(async (f) => (await row(f.deliveryId)).tokenHash));
      const before = await hashes();
      expect(await requeueAlerts(t.db, idle.alerts)).toBe(1);
      const after = await hashes();
      expect(after.slice(0, 3)).toEqual(before.slice(0, 3));
      expect(after[3]).not.toBe(before[3]);
      expect(await idle.alerts.queued([held.deliveryId, old.deliveryId, disabled.deliveryId, lost.deliveryId])).toEqual(
        new Set([held.deliveryId, lost.deliveryId]),
      );
      // the held job's token still claims it: nothing was taken from it
      expect(await alertDeliveryApi(t.db, DASHBOARD).claim(held.job)).toMatchObject({ attempt: 1 });
    } finally {
      await dropTestQueues(idle);
    }
  });
});

/** The worker's side of the delivery endpoint, as apps/worker/src/alerts.ts calls it, without the HTTP hop. */
function endpointApi(): AlertDeliveryApi {
  const handler = createAlertDeliveryHandler({ db: t.db, publicUrl: DASHBOARD });
  const call = async (body: Record<string, unknown>) => {
    const res = await handler(
      new Request('http://lab.internal/api/alerts/delivery', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
    );
    if (!res.ok) throw new Error(`the endpoint answered ${res.status}: ${await res.text()}`);
    return res.json();
  };
  return {
    claim: async (job) => claimAnswer.parse(await call({ op: 'claim', ...job })),
    report: async (job, r) => void (await call({ op: 'report', ...job, ...r })),
  };
}

describe("a receiver's nonsense, and a report that fails", () => {
  const opts = { allowPrivate: true, timeoutMs: 2_000, reportRetryMs: 10 };

  it('status 999 and a NUL in the answer are logged as failures, through the endpoint, without a retry', async () => {
    const odd = await unqueuedFiring();
    receiver.answer(odd.path, 999, 'odd\0answer');
    await expect(deliverAlert(odd.job, endpointApi(), opts)).rejects.toBeInstanceOf(UnrecoverableError);
    expect(await row(odd.deliveryId)).toMatchObject({
      attempts: 1,
      lastStatus: null,
      lastError: 'HTTP 999: not an HTTP status',
    });

    const missing = await unqueuedFiring();
    receiver.answer(missing.path, 404, `Cannot POST ${missing.path}\0\n<hr>`);
    await expect(deliverAlert(missing.job, endpointApi(), opts)).rejects.toBeInstanceOf(UnrecoverableError);
    expect(await row(missing.deliveryId)).toMatchObject({ lastStatus: 404, lastError: 'HTTP 404: Cannot POST … <hr>' });

    const busy = await unqueuedFiring();
    receiver.answer(busy.path, 503, 'busy\0');
    const retried = await deliverAlert(busy.job, endpointApi(), opts).catch((e: unknown) => e);
    expect(retried).toBeInstanceOf(Error);
    expect(retried).not.toBeInstanceOf(UnrecoverableError);
    expect(await row(busy.deliveryId)).toMatchObject({ lastStatus: 503, lastError: 'HTTP 503: busy' });
    expect(receiver.at(odd.path).length + receiver.at(missing.path).length + receiver.at(busy.path).length).toBe(3);

    // and the endpoint itself answers 400 to text Postgres cannot store, never a 500
    await expect(
      endpointApi().report(busy.job, { attempt: 1, status: 503, error: 'a\0b', delivered: false }),
    ).rejects.toThrow(/answered 400: .*error: must not contain a NUL/);
  });

  it('a delivered POST whose report fails is not sent again', async () => {
    const f = await unqueuedFiring();
    const real = alertDeliveryApi(t.db, DASHBOARD);
    const away: AlertDeliveryApi = {
      claim: real.claim,
      report: () => Promise.reject(new Error('the platform is away')),
    };
    const q = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), testQueueName(), { backoffMs: 50 });
    const w = createAlertWorker(
      createRedis('redis://127.0.0.1:6379', 'worker'),
      alertsQueueName(q.queueName),
      away,
      opts,
    );
    try {
      await q.alerts.enqueue([f.job]);
      await until(() => receiver.at(f.path).length === 1, 15_000, 'the POST');
      await settle(1_000); // a retry would have come after 50 ms
      expect(receiver.at(f.path)).toHaveLength(1);
      expect(await row(f.deliveryId)).toMatchObject({ attempts: 1, deliveredAt: null });
    } finally {
      await w.close();
      await dropTestQueues(q);
    }
  });
});

describe('the delivery log', () => {
  it('members read the class of error; viewers the status code and that it failed', async () => {
    const missing = await unqueuedFiring();
    receiver.answer(missing.path, 404, `no such hook: ${missing.path}`);
    await deliverAlert(missing.job, alertDeliveryApi(t.db, DASHBOARD), { allowPrivate: true }).catch(() => undefined);
    const nowhere = await unqueuedFiring();
    await caller({ userId: memberId }).alerts.update({ id: nowhere.ruleId, url: 'http://no-such-host.invalid/x' });
    await deliverAlert(nowhere.job, alertDeliveryApi(t.db, DASHBOARD), { allowPrivate: true }).catch(() => undefined);

    const seen = async (userId: string, f: { run: { projectId: string } }) =>
      (await caller({ userId }).alerts.list({ projectId: f.run.projectId })).deliveries[0]!;
    expect(await seen(memberId, missing)).toMatchObject({ lastStatus: 404, lastError: 'HTTP 404: no such hook: …' });
    expect(await seen(memberId, nowhere)).toMatchObject({ lastStatus: null, lastError: 'DNS lookup failed' });
    for (const f of [missing, nowhere]) {
      const d = await seen(viewerId, f);
      expect(d.lastError).toBe('not delivered (members and owners see why)');
      expect(d.lastStatus).toBe(f === missing ? 404 : null);
    }
  });
});
