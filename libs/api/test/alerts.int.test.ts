/**
 * Alert rules fire from the writes that trigger them and are delivered, signed, to a real receiver on 127.0.0.1:
 * through the real queue (Redis) and the consumer the worker runs, with the platform's side of each attempt called
 * directly (the worker reaches it over HTTP: e2e/alerts.e2e.ts). Each kind fires once per run (per sweep), however
 * often its trigger is written; a receiver that fails is retried until it answers, and delivered once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '@aft/db/testing';
import type { WireNumber } from '@aft/contracts';
import { RunNotifier } from '@aft/db';
import type { JobProducer } from '@aft/queue';
import { appRouter, createCallerFactory, createContextInner } from '../src';
import { createMember, createTeamWithKey } from '../src/testing';
import { DASHBOARD, startAlertStack } from './alert-stack';
import { startReceiver, until, verifySignature } from './alert-receiver';

// the receiver is on 127.0.0.1, which rules may only name with this set (the web and the worker read it)
process.env['AFT_ALERTS_ALLOW_PRIVATE'] = '1';

let stack: Awaited<ReturnType<typeof startAlertStack>>;
let t: TestDatabase;
let notifier: RunNotifier;
let producer: JobProducer;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let trainer: ReturnType<typeof caller>;
let member: ReturnType<typeof caller>;

const caller = (ctx: { apiKey?: string; userId?: string }) =>
  createCallerFactory(appRouter)(
    createContextInner({ db: t.db, notifier, apiKey: ctx.apiKey ?? null, userId: ctx.userId ?? null, jobs: producer }),
  );

beforeAll(async () => {
  stack = await startAlertStack();
  ({ t, notifier, producer, receiver } = stack);
  trainer = caller({ apiKey: (await createTeamWithKey(t.db, 'lab')).key });
  member = caller({ userId: (await createMember(t.db, 'lab', 'member')).user.id });
});
afterAll(async () => {
  await stack?.close();
});

let n = 0;
/** A run in a fresh project, and a rule of `kind` on it posting to a path of its own. */
async function ruleOnNewProject(kind: string, extra: Record<string, unknown> = {}) {
  const run = await trainer.runs.create({ project: `p-${++n}-${Date.now()}`, name: `run-${n}`, config: {} });
  const path = `/hook-${n}`;
  const made = await member.alerts.create({
    projectId: run.projectId,
    name: `rule ${n}`,
    kind: kind as 'run-failed',
    url: `${receiver.url}${path}`,
    ...extra,
  });
  return { run, path, rule: made.rule, secret: made.secret };
}

const deliveries = (projectId: string) => member.alerts.list({ projectId }).then((l) => l.deliveries);
const settle = () => new Promise((r) => setTimeout(r, 400));

describe('alert delivery', () => {
  it('a degradation event fires its rule once: one POST, signed with the rule secret, Slack-compatible', async () => {
    const { run, path, rule, secret } = await ruleOnNewProject('degradation-detected');
    expect(secret).toMatch(/^aftwh_[\w-]{43}$/);
    const details = { evidence: 'task accuracy fell 0.41 → 0.12', policy: 'stop' };
    await trainer.events.log({ runId: run.id, kind: 'degradation-detected', step: 120, details });
    await until(() => receiver.at(path).length === 1, 15_000, 'the POST');
    // the same event again (a retried request) fires nothing more
    await trainer.events.log({ runId: run.id, kind: 'degradation-detected', step: 121, details });
    await trainer.events.log({ runId: run.id, kind: 'note', step: 122 });
    await settle();
    const [post] = receiver.at(path);
    expect(receiver.at(path)).toHaveLength(1);
    expect(verifySignature(secret, post!)).toBe(true);
    expect(verifySignature(`${secret}x`, post!)).toBe(false);
    expect(verifySignature(secret, { ...post!, body: post!.body.replace('120', '121') })).toBe(false);
    expect(Math.abs(Number(post!.headers['x-aft-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    expect(post!.headers['content-type']).toBe('application/json');
    const body = JSON.parse(post!.body);
    expect(body.text).toContain('degraded at step 120');
    expect(body.text).toContain(`<${DASHBOARD}/runs/${run.id}|${run.name}>`);
    expect(body.blocks[0]).toEqual({ type: 'section', text: { type: 'mrkdwn', text: body.text } });
    expect(body.aft).toMatchObject({
      kind: 'degradation-detected',
      deliveryId: post!.headers['x-aft-delivery'],
      rule: { id: rule.id, name: rule.name },
      project: { id: run.projectId },
      run: { id: run.id, name: run.name, url: `${DASHBOARD}/runs/${run.id}` },
      step: 120,
      evidence: details,
    });
    const [d] = await until(async () => {
      const ds = await deliveries(run.projectId);
      return ds[0]?.deliveredAt ? ds : null;
    });
    expect(d).toMatchObject({ id: post!.headers['x-aft-delivery'], attempts: 1, lastStatus: 200, lastError: null });
    expect(d).toMatchObject({ kind: 'degradation-detected', runId: run.id, runName: run.name, ruleName: rule.name });
  });

  it('retries a receiver that fails twice and records one delivery: 3 attempts, status 200', async () => {
    const { run, path, secret } = await ruleOnNewProject('run-failed');
    receiver.fail(path, 2);
    await trainer.runs.setStatus({ id: run.id, status: 'failed', error: 'loss is NaN at step 40' });
    await trainer.runs.setStatus({ id: run.id, status: 'failed', error: 'loss is NaN at step 40' });
    const [d] = await until(async () => {
      const ds = await deliveries(run.projectId);
      return ds[0]?.deliveredAt ? ds : null;
    });
    await settle();
    expect(await deliveries(run.projectId)).toHaveLength(1);
    expect(d).toMatchObject({ kind: 'run-failed', attempts: 3, lastStatus: 200, lastError: null });
    const posts = receiver.at(path);
    expect(posts).toHaveLength(3);
    // every attempt names the same delivery (receivers de-duplicate on it) and is signed afresh
    expect(new Set(posts.map((p) => p.headers['x-aft-delivery']))).toEqual(new Set([d!.id]));
    expect(posts.map((p) => p.headers['x-aft-attempt'])).toEqual(['1', '2', '3']);
    expect(posts.every((p) => verifySignature(secret, p))).toBe(true);
    expect(JSON.parse(posts[2]!.body).text).toContain('failed: loss is NaN at step 40');
  });

  it('a sweep fires sweep-finished once, when its last run ends', async () => {
    const { run: first, path } = await ruleOnNewProject('sweep-finished');
    const sweep = await t.db.prisma.sweep.create({ data: { projectId: first.projectId, name: 'grid' } });
    const runs = await Promise.all(
      ['a', 'b', 'c'].map((name) =>
        t.db.prisma.run.create({
          data: { projectId: first.projectId, sweepId: sweep.id, name, status: 'running' },
        }),
      ),
    );
    await trainer.runs.setStatus({ id: runs[0]!.id, status: 'succeeded' });
    await trainer.runs.setStatus({ id: runs[1]!.id, status: 'failed', error: 'x' });
    await settle();
    expect(receiver.at(path)).toHaveLength(0);
    await trainer.runs.setStatus({ id: runs[2]!.id, status: 'succeeded' });
    await trainer.runs.setStatus({ id: runs[2]!.id, status: 'succeeded' });
    await trainer.runs.setStatus({ id: runs[1]!.id, status: 'failed', error: 'x' });
    await until(() => receiver.at(path).length === 1, 15_000, 'the POST');
    await settle();
    expect(receiver.at(path)).toHaveLength(1);
    const body = JSON.parse(receiver.at(path)[0]!.body);
    expect(body.aft.sweep).toMatchObject({ id: sweep.id, name: 'grid', status: 'failed' });
    expect(body.aft.sweep.counts).toEqual({ succeeded: 2, failed: 1 });
    expect(body.aft.run.id).toBe(runs[2]!.id);
    expect(body.text).toContain(`sweep <${DASHBOARD}/sweeps/${sweep.id}|grid>`);
  });

  it('a metric threshold fires once per run, at the first crossing step, and only for its key', async () => {
    const { run, path } = await ruleOnNewProject('metric-threshold', {
      metricKey: 'train/loss',
      op: 'above',
      threshold: 5,
    });
    const log = (runId: string, points: { key: string; step: number; value: WireNumber }[]) =>
      trainer.metrics.log({ runId, points });
    await log(run.id, [
      { key: 'train/loss', step: 1, value: 2 },
      { key: 'train/loss', step: 2, value: 'NaN' },
      { key: 'eval/acc', step: 2, value: 50 },
    ]);
    await settle();
    expect(receiver.at(path)).toHaveLength(0);
    // neither the first nor the last crossing of the batch is its lowest step
    await log(run.id, [
      { key: 'train/loss', step: 4, value: 9 },
      { key: 'train/loss', step: 3, value: 7 },
      { key: 'train/loss', step: 5, value: 6 },
    ]);
    await trainer.metrics.log({
      runId: run.id,
      columns: { keys: ['train/loss'], key: [0, 0], step: [5, 6], value: [11, 'Infinity'] },
    });
    const other = await trainer.runs.create({ project: run.project.name, name: 'other', config: {} });
    await trainer.metrics.log({
      runId: other.id,
      columns: { keys: ['train/loss'], key: [0], step: [8], value: ['Infinity'] },
    });
    await until(() => receiver.at(path).length === 2, 15_000, 'two POSTs');
    await settle();
    const bodies = receiver.at(path).map((p) => JSON.parse(p.body).aft);
    expect(bodies).toHaveLength(2);
    const mine = bodies.find((b) => b.run.id === run.id);
    expect(mine).toMatchObject({ step: 3, evidence: { key: 'train/loss', value: 7, op: 'above', threshold: 5 } });
    const theirs = bodies.find((b) => b.run.id === other.id);
    expect(theirs).toMatchObject({ step: 8, evidence: { value: 'Infinity' } });
  });

  it('a disabled rule does not fire; a test send goes out through it all the same', async () => {
    const { run, path, rule, secret } = await ruleOnNewProject('run-failed');
    await member.alerts.update({ id: rule.id, enabled: false });
    await trainer.runs.setStatus({ id: run.id, status: 'failed' });
    const { deliveryId } = await member.alerts.testSend({ id: rule.id });
    await until(() => receiver.at(path).length === 1, 15_000, 'the test POST');
    await settle();
    const [post] = receiver.at(path);
    expect(post!.headers['x-aft-delivery']).toBe(deliveryId);
    expect(verifySignature(secret, post!)).toBe(true);
    expect(JSON.parse(post!.body).aft).toMatchObject({ kind: 'test', run: null });
    expect((await deliveries(run.projectId)).map((d) => d.kind)).toEqual(['test']);
  });
});
