/**
 * Who may do what with alert rules, what a rule may point at, and the platform's side of a delivery: viewers read
 * but do not write (403), another team sees nothing (404), secrets are shown once, bad input is a 400 naming the
 * field, private hosts are refused unless AFT_ALERTS_ALLOW_PRIVATE is set (and again when the worker connects),
 * every change is in the audit log, and the delivery endpoint answers only the firing's own token.
 */
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TRPCError } from '@trpc/server';
import { ZodError } from 'zod';
import { UnrecoverableError } from 'bullmq';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { recordAlertFirings, RunNotifier } from '@aft/db';
import {
  createRedis,
  deliverAlert,
  dropTestQueues,
  isPrivateAddress,
  JobProducer,
  postWebhook,
  testQueueName,
  WebhookRefusedError,
} from '@aft/queue';
import {
  alertDeliveryApi,
  appRouter,
  createAlertDeliveryHandler,
  createCallerFactory,
  createContextInner,
} from '../src';
import { alertEvent } from '../src/alerts/fire';
import { describeZodError } from '../src/trpc';
import { createMember, createTeamWithKey, createTestHandler } from '../src/testing';
import { startReceiver } from './alert-receiver';

let t: TestDatabase;
let notifier: RunNotifier;
let producer: JobProducer;
let projectId: string;
let trainerKey: string;
const as: Record<'owner' | 'member' | 'viewer' | 'stranger' | 'readKey', ReturnType<typeof caller>> = {} as never;

const caller = (ctx: { apiKey?: string; userId?: string }) =>
  createCallerFactory(appRouter)(
    createContextInner({ db: t.db, notifier, apiKey: ctx.apiKey ?? null, userId: ctx.userId ?? null, jobs: producer }),
  );

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    // as the HTTP handler words it (a caller gets the raw zod issues)
    if (e instanceof TRPCError)
      return `${e.code}: ${e.cause instanceof ZodError ? describeZodError(e.cause) : e.message}`;
    throw e;
  }
  return 'OK';
}

beforeAll(async () => {
  t = await createTestDatabase();
  notifier = new RunNotifier(t.url);
  producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), testQueueName());
  trainerKey = (await createTeamWithKey(t.db, 'lab')).key;
  for (const role of ['owner', 'member', 'viewer'] as const)
    as[role] = caller({ userId: (await createMember(t.db, 'lab', role)).user.id });
  as.stranger = caller({ userId: (await createMember(t.db, 'elsewhere', 'owner')).user.id });
  as.readKey = caller({ apiKey: (await createTeamWithKey(t.db, 'lab', ['read', 'log'])).key });
  projectId = (await caller({ apiKey: trainerKey }).runs.create({ project: 'watched', config: {} })).projectId;
});
afterEach(() => {
  process.env['AFT_ALERTS_ALLOW_PRIVATE'] = undefined;
  delete process.env['AFT_ALERTS_ALLOW_PRIVATE'];
});
afterAll(async () => {
  await dropTestQueues(producer);
  await notifier?.close();
  await t?.drop();
});

const rule = (extra: Record<string, unknown> = {}) => ({
  projectId,
  name: 'on failure',
  kind: 'run-failed' as const,
  url: 'https://hooks.example.com/services/T000/B000/xyz',
  ...extra,
});

describe('alert rules: access', () => {
  it('members and owners create; viewers and keys without `launch` are refused with 403', async () => {
    expect(await refusal(as.viewer.alerts.create(rule()))).toBe(
      'FORBIDDEN: your role in this team is viewer; this needs member or owner',
    );
    expect(await refusal(as.readKey.alerts.create(rule()))).toBe('FORBIDDEN: this API key lacks the `launch` scope');
    const made = await as.member.alerts.create(rule({ name: 'by a member' }));
    expect(made.secret).toMatch(/^aftwh_/);
    const { rule: r } = await as.owner.alerts.create(rule({ name: 'by an owner' }));
    expect(await refusal(as.viewer.alerts.update({ id: r.id, enabled: false }))).toMatch(/^FORBIDDEN/);
    expect(await refusal(as.viewer.alerts.delete({ id: r.id }))).toMatch(/^FORBIDDEN/);
    expect(await refusal(as.viewer.alerts.testSend({ id: r.id }))).toMatch(/^FORBIDDEN/);
    // viewers read the rules and the log, and nobody reads a secret back
    const list = await as.viewer.alerts.list({ projectId });
    expect(list.rules.map((x) => x.name)).toEqual(expect.arrayContaining(['by a member', 'by an owner']));
    expect(JSON.stringify(list)).not.toContain('aftwh_');
    expect(list.rules[0]).not.toHaveProperty('secret');
    // a Slack webhook's path is a credential to post with: only those who edit rules see it
    expect(list.rules[0]!.url).toBe('https://hooks.example.com/…');
    expect((await as.member.alerts.list({ projectId })).rules[0]!.url).toBe(rule().url);
  });

  it("another team's rules are as missing as rules that never were (404)", async () => {
    const { rule: r } = await as.member.alerts.create(rule({ name: 'private to lab' }));
    expect(await refusal(as.stranger.alerts.list({ projectId }))).toBe(`NOT_FOUND: project ${projectId} not found`);
    expect(await refusal(as.stranger.alerts.create(rule()))).toBe(
      `NOT_FOUND: projectId: project ${projectId} not found`,
    );
    for (const op of ['update', 'delete', 'testSend'] as const) {
      const input = op === 'update' ? { id: r.id, enabled: false } : { id: r.id };
      expect(await refusal(as.stranger.alerts[op](input as never))).toBe(`NOT_FOUND: alert rule ${r.id} not found`);
    }
    expect((await as.member.alerts.list({ projectId })).rules.find((x) => x.id === r.id)?.enabled).toBe(true);
  });

  it('records every change in the audit log, with the host but not the path of the webhook', async () => {
    const { rule: r } = await as.member.alerts.create(rule({ name: 'audited' }));
    await as.member.alerts.update({
      id: r.id,
      name: 'audited (renamed)',
      url: 'https://other.example.net/hook/s3cr3t',
    });
    await as.owner.alerts.delete({ id: r.id });
    const events = await t.db.prisma.auditEvent.findMany({ where: { target: r.id }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.action)).toEqual(['alert.create', 'alert.update', 'alert.delete']);
    expect(events[0]!.details).toMatchObject({ name: 'audited', kind: 'run-failed', host: 'hooks.example.com' });
    expect(events[1]!.details).toMatchObject({ changed: ['name', 'url'], host: 'other.example.net' });
    expect(JSON.stringify(events.map((e) => e.details))).not.toContain('s3cr3t');
    expect((await as.member.alerts.list({ projectId })).rules.find((x) => x.id === r.id)).toBeUndefined();
  });
});

describe('alert rules: input', () => {
  it.each([
    ['a URL that is not one', { url: 'hooks.example.com/x' }, /^url: not a URL/],
    ['another scheme', { url: 'ftp://hooks.example.com/x' }, /^url: a webhook URL starts with https:\/\/ or http:\/\//],
    ['credentials in the URL', { url: 'https://u:p@hooks.example.com/' }, /^url: a webhook URL must not carry/],
    ['an overlong URL', { url: `https://hooks.example.com/${'a'.repeat(2001)}` }, /^url: a webhook URL is at most/],
    ['loopback', { url: 'http://127.0.0.1:8080/hook' }, /^url: the host 127\.0\.0\.1 is a private or loopback/],
    ['IPv6 loopback', { url: 'http://[::1]/hook' }, /^url: the host ::1 is a private/],
    ['cloud metadata', { url: 'http://169.254.169.254/latest' }, /^url: the host 169\.254\.169\.254 is a private/],
    ['a private network', { url: 'https://10.1.2.3/hook' }, /^url: the host 10\.1\.2\.3 is a private/],
    ['localhost by name', { url: 'http://localhost:3000/hook' }, /^url: the host localhost is a private/],
    ['an unknown kind', { kind: 'run-started' }, /^kind: a kind is one of degradation-detected, run-failed/],
    ['a metric rule without its key', { kind: 'metric-threshold', op: 'above', threshold: 1 }, /^metricKey: a metric/],
    ['a threshold on another kind', { threshold: 3 }, /^threshold: only a metric-threshold rule takes threshold/],
    ['an empty name', { name: '  ' }, /^name: a rule name must not be empty/],
  ])('refuses %s with a 400 naming the field', async (_what, extra, message) => {
    const r = await refusal(as.member.alerts.create(rule(extra)));
    expect(r).toMatch(/^BAD_REQUEST: invalid input — /);
    expect(r.replace(/^BAD_REQUEST: invalid input — /, '')).toMatch(message);
  });

  it('answers over HTTP with status 400, and takes a private host when AFT_ALERTS_ALLOW_PRIVATE=1', async () => {
    const key = (await createTeamWithKey(t.db, 'lab', ['read', 'log', 'launch'])).key;
    const api = createTestHandler(t.db, t.url, null, producer);
    const local = rule({ url: 'http://127.0.0.1:9/hook' });
    const refused = await api.call('alerts.create', local, { key });
    expect(refused.status).toBe(400);
    expect(refused.json.error!.message).toMatch(/invalid input — url: the host 127\.0\.0\.1 is a private/);
    process.env['AFT_ALERTS_ALLOW_PRIVATE'] = '1';
    expect((await api.call('alerts.create', local, { key })).status).toBe(200);
    await api.notifier.close();
  });

  it('classifies addresses, mapped IPv6 included', () => {
    for (const ip of ['127.0.0.1', '10.0.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '0.0.0.0'])
      expect(isPrivateAddress(ip), ip).toBe(true);
    for (const ip of ['::1', '::', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1'])
      expect(isPrivateAddress(ip), ip).toBe(true);
    for (const ip of ['8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])
      expect(isPrivateAddress(ip), ip).toBe(false);
  });
});

describe('the platform side of a delivery', () => {
  async function firing(url: string) {
    process.env['AFT_ALERTS_ALLOW_PRIVATE'] = '1';
    const { rule: r } = await as.member.alerts.create(rule({ name: `hook ${Date.now()}`, url }));
    delete process.env['AFT_ALERTS_ALLOW_PRIVATE'];
    const c = { ruleId: r.id, ruleName: r.name, projectId, projectName: 'watched' };
    const [f] = await recordAlertFirings(t.db, [
      { ruleId: r.id, projectId, kind: 'test', subject: null, runId: null, payload: { ...alertEvent(c, 'test') } },
    ]);
    return { ...f!, ruleId: r.id };
  }
  const row = (id: string) => t.db.prisma.alertDelivery.findUniqueOrThrow({ where: { id } });

  it('the worker refuses to connect to a private address unless allowed, once, without retrying', async () => {
    const receiver = await startReceiver();
    const f = await firing(`${receiver.url}/inside`);
    const api = alertDeliveryApi(t.db, 'https://lab.example.org');
    const job = { deliveryId: f.deliveryId, token: f.token };
    await expect(deliverAlert(job, api, { allowPrivate: false })).rejects.toBeInstanceOf(UnrecoverableError);
    expect(receiver.received).toHaveLength(0);
    expect(await row(f.deliveryId)).toMatchObject({ attempts: 1, lastStatus: null, deliveredAt: null });
    expect((await row(f.deliveryId)).lastError).toBe('refused: private address');
    expect(await deliverAlert(job, api, { allowPrivate: true })).toEqual({ delivered: true, status: 200 });
    // delivered: nothing is sent again, whoever asks
    expect(await deliverAlert(job, api, { allowPrivate: true })).toEqual({
      delivered: false,
      skipped: 'delivered already',
    });
    expect(receiver.received).toHaveLength(1);
    expect(await row(f.deliveryId)).toMatchObject({ attempts: 2, lastStatus: 200, lastError: null });
    await receiver.close();
  });

  it('the worker also refuses a name that resolves to a private address', async () => {
    const name = hostname();
    const { address } = await lookup(name);
    // this machine's own name resolves to a loopback address on most hosts (/etc/hosts); elsewhere there is nothing to check
    if (!isPrivateAddress(address)) return;
    const receiver = await startReceiver();
    const url = receiver.url.replace('127.0.0.1', name);
    const post = (allowPrivate: boolean) =>
      postWebhook(url, { headers: {}, body: '{}', timeoutMs: 2_000, allowPrivate });
    await expect(post(false)).rejects.toThrow(new RegExp(`^${name} resolves to the private address`));
    await expect(post(false)).rejects.toBeInstanceOf(WebhookRefusedError);
    expect(receiver.received).toHaveLength(0);
    expect(await post(true)).toEqual({ status: 200, snippet: 'ok' });
    await receiver.close();
  });

  it('a queued delivery of a rule since disabled is not sent; a test send is', async () => {
    const f = await firing('https://hooks.example.com/y');
    const api = alertDeliveryApi(t.db, 'https://lab.example.org');
    await as.member.alerts.update({ id: f.ruleId, enabled: false });
    const [queued] = await recordAlertFirings(t.db, [
      { ruleId: f.ruleId, projectId, kind: 'run-failed', subject: 'run:r1', runId: 'r1', payload: {} },
    ]);
    expect(await api.claim(queued!)).toEqual({ done: 'the rule is disabled' });
    expect(await row(queued!.deliveryId)).toMatchObject({ attempts: 0, lastError: 'not sent: the rule is disabled' });
    expect(await api.claim(f)).toMatchObject({ attempt: 1 });
  });

  it('the delivery endpoint answers only the firing token, and 400 to a malformed request', async () => {
    const f = await firing('https://hooks.example.com/x');
    const handler = createAlertDeliveryHandler({ db: t.db, publicUrl: null });
    const post = async (body: unknown, host?: string) => {
      const res = await handler(
        new Request('http://lab.internal:3000/api/alerts/delivery', {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(host ? { host } : {}) },
          body: JSON.stringify(body),
        }),
      );
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };
    const forged = await post({ op: 'claim', deliveryId: f.deliveryId, token: 'aftdl_forged' });
    expect(forged).toEqual({ status: 200, json: { done: 'no such delivery: its rule was deleted' } });
    expect((await row(f.deliveryId)).attempts).toBe(0);
    const claim = await post({ op: 'claim', deliveryId: f.deliveryId, token: f.token });
    expect(claim.json).toMatchObject({ attempt: 1, url: 'https://hooks.example.com/x' });
    expect(JSON.parse(claim.json['body'] as string).aft.rule.id).toBe(f.ruleId);
    // links point at the address the worker called when no public URL is configured
    expect(claim.json['body']).toContain('http://lab.internal:3000/projects/');
    const again = await post({ op: 'claim', deliveryId: f.deliveryId, token: f.token }, '127.0.0.1:3999');
    expect(again.json).toMatchObject({ attempt: 2 });
    expect(again.json['body']).toContain('http://127.0.0.1:3999/projects/');
    expect((await post({ op: 'claim', deliveryId: f.deliveryId })).status).toBe(400);
    expect((await post({ op: 'report', deliveryId: f.deliveryId, token: f.token, attempt: 1 })).json).toMatchObject({
      error: expect.stringMatching(/^invalid input — status: /),
    });
    expect((await post({ op: 'nothing' })).status).toBe(400);
  });
});
