/**
 * Cross-site writes (issue 14, §3): the browser attaches the session cookie to any request a foreign page makes, so
 * the MLflow API, its artifact routes and the export take the cookie only from this site's own pages (Sec-Fetch-Site
 * or Origin); trainer logging through MLflow needs an API key, as tRPC's logging does; and MLflow writes are charged
 * to the key's ingestion rate before anything is written.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunNotifier } from '@aft/db';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createRedis } from '@aft/queue';
import { createApiHandler, createAuth, createExportHandler, createMlflowHandler, RedisRateLimiter } from '../src';
import { crossSiteRefusal } from '../src/same-origin';
import { createTeamWithKey } from '../src/testing';

const ORIGIN = 'http://127.0.0.1:3997';
const SECRET = 'cross-site-secret-cross-site-secret-01';
let t: TestDatabase;
let notifier: RunNotifier;
let mlflow: (req: Request) => Promise<Response>;
let exporter: (req: Request) => Promise<Response>;
let cookie: string;
let key: string;
let experimentId: string;
const dir = mkdtempSync(join(tmpdir(), 'aft-cross-site-'));
const redis = createRedis('redis://127.0.0.1:6379', 'worker');

const SAME = { 'sec-fetch-site': 'same-origin' };
const CROSS = { 'sec-fetch-site': 'cross-site' };

beforeAll(async () => {
  t = await createTestDatabase();
  notifier = new RunNotifier(t.url);
  const auth = createAuth({ db: t.db, secret: SECRET, baseURL: ORIGIN });
  mlflow = createMlflowHandler({ db: t.db, notifier, auth, artifactDir: dir });
  exporter = createExportHandler({ db: t.db, notifier, auth });
  const email = `cs-${randomBytes(4).toString('hex')}@lab.test`;
  const password = 'a perfectly fine password for this test';
  for (const path of ['sign-up/email', 'sign-in/email']) {
    const res = await auth.handler(
      new Request(`${ORIGIN}/api/auth/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: ORIGIN },
        body: JSON.stringify({ email, password, name: 'Cross Site' }),
      }),
    );
    const set = res.headers.getSetCookie().map((c) => c.split(';')[0]!);
    if (set.length) cookie = set.join('; ');
  }
  const user = await t.db.prisma.user.findUniqueOrThrow({
    where: { email },
    include: { memberships: { include: { team: true } } },
  });
  key = (await createTeamWithKey(t.db, user.memberships[0]!.team.slug)).key;
  const created = await call('POST', '/api/2.0/mlflow/experiments/create', { key, body: { name: 'cross-site' } });
  experimentId = ((await created.json()) as { experiment_id: string }).experiment_id;
});
afterAll(async () => {
  await notifier?.close();
  redis.disconnect();
  await t?.drop();
  rmSync(dir, { recursive: true, force: true });
});

function call(
  method: string,
  path: string,
  o: { key?: string; cookie?: boolean; headers?: Record<string, string>; body?: unknown; handler?: typeof mlflow } = {},
) {
  const headers: Record<string, string> = { ...o.headers };
  if (o.key) headers['authorization'] = `Bearer ${o.key}`;
  if (o.cookie) headers['cookie'] = cookie;
  if (o.body !== undefined && typeof o.body !== 'string') headers['content-type'] = 'application/json';
  const body = o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
  return (o.handler ?? mlflow)(new Request(`${ORIGIN}${path}`, { method, headers, body }));
}

async function newRun(): Promise<string> {
  const r = await call('POST', '/api/2.0/mlflow/runs/create', { key, body: { experiment_id: experimentId } });
  return ((await r.json()) as { run: { info: { run_id: string } } }).run.info.run_id;
}
const tagsOf = async (id: string) =>
  (await t.db.pool.query<{ kv_tags: Record<string, string> }>('SELECT kv_tags FROM run WHERE id = $1', [id])).rows[0]
    ?.kv_tags;

describe('crossSiteRefusal', () => {
  const h = (o: Record<string, string>) => new Headers(o);
  it.each([
    [{ 'sec-fetch-site': 'same-origin' }, true, null],
    [{ 'sec-fetch-site': 'none' }, true, null],
    [{ 'sec-fetch-site': 'same-site' }, false, /same-site/],
    [{ 'sec-fetch-site': 'cross-site' }, false, /cross-site/],
    // Sec-Fetch-Site decides when present, whatever Origin says
    [{ 'sec-fetch-site': 'cross-site', origin: ORIGIN }, false, /cross-site/],
    [{ origin: ORIGIN }, true, null],
    [{ origin: 'http://evil.test' }, true, /evil\.test/],
    [{ origin: 'null' }, true, /Origin: null/],
    [{ origin: 'http://127.0.0.1:3997.evil.test' }, true, /Origin/],
    [{ origin: 'https://lab.example', 'x-forwarded-host': 'lab.example' }, true, null],
    [{}, false, null],
    [{}, true, /without an Origin or Sec-Fetch-Site/],
  ] as const)('%j (write: %s) → %s', (headers, write, refusal) => {
    const r = crossSiteRefusal(h(headers), `${ORIGIN}/api/2.0/mlflow/runs/set-tag`, write);
    if (refusal === null) expect(r).toBeNull();
    else expect(r).toMatch(refusal);
  });
});

describe('the MLflow API with the session cookie', () => {
  it.each(['/api/2.0/mlflow', '/ajax-api/2.0/mlflow'])(
    'refuses a cross-site write on %s (403 PERMISSION_DENIED) and changes nothing',
    async (prefix) => {
      const id = await newRun();
      const refused: Record<string, string>[] = [
        CROSS,
        { 'sec-fetch-site': 'same-site' },
        { origin: 'http://evil.test' },
        {},
      ];
      for (const headers of refused) {
        for (const [path, body] of [
          ['runs/set-tag', { run_id: id, key: 'stage', value: 'hacked' }],
          ['runs/update', { run_id: id, status: 'KILLED' }],
          ['runs/delete', { run_id: id }],
        ] as const) {
          const res = await call('POST', `${prefix}/${path}`, { cookie: true, headers, body });
          expect(res.status, `${path} ${JSON.stringify(headers)}`).toBe(403);
          expect(((await res.json()) as { error_code: string }).error_code).toBe('PERMISSION_DENIED');
        }
      }
      expect(await tagsOf(id)).not.toHaveProperty('stage');
      expect(await t.db.prisma.run.findUnique({ where: { id }, select: { status: true } })).toEqual({
        status: 'running',
      });
    },
  );

  it('takes writes and reads from this site’s own pages, and reads without either header', async () => {
    const id = await newRun();
    const set = await call('POST', '/ajax-api/2.0/mlflow/runs/set-tag', {
      cookie: true,
      headers: SAME,
      body: { run_id: id, key: 'stage', value: 'reviewed' },
    });
    expect(set.status).toBe(200);
    const viaOrigin = await call('POST', '/api/2.0/mlflow/runs/update', {
      cookie: true,
      headers: { origin: ORIGIN },
      body: { run_id: id, run_name: 'renamed' },
    });
    expect(viaOrigin.status).toBe(200);
    expect(await tagsOf(id)).toMatchObject({ stage: 'reviewed', 'mlflow.runName': 'renamed' });
    expect((await call('GET', `/api/2.0/mlflow/runs/get?run_id=${id}`, { cookie: true })).status).toBe(200);
    expect((await call('GET', `/api/2.0/mlflow/runs/get?run_id=${id}`, { cookie: true, headers: CROSS })).status).toBe(
      403,
    );
    const del = await call('POST', '/api/2.0/mlflow/runs/delete', {
      cookie: true,
      headers: SAME,
      body: { run_id: id },
    });
    expect(del.status).toBe(200);
  });

  it('never takes trainer logging from the session cookie, even from this site (as tRPC’s logging)', async () => {
    const id = await newRun();
    for (const [path, body] of [
      ['runs/log-metric', { run_id: id, key: 'loss', value: 1, step: 0 }],
      ['runs/log-parameter', { run_id: id, key: 'lr', value: '0.1' }],
      ['runs/log-batch', { run_id: id, metrics: [{ key: 'loss', value: 1 }] }],
    ] as const) {
      const res = await call('POST', `/api/2.0/mlflow/${path}`, { cookie: true, headers: SAME, body });
      expect(res.status, path).toBe(403);
      expect(((await res.json()) as { message: string }).message).toMatch(/logging needs an API key/);
    }
    const put = await call('PUT', `/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${id}/artifacts/a.txt`, {
      cookie: true,
      headers: SAME,
      body: 'x',
    });
    expect(put.status).toBe(403);
    expect(await t.db.prisma.artifact.count({ where: { runId: id } })).toBe(0);
    // the same writes with the key go through
    const ok = await call('POST', '/api/2.0/mlflow/runs/log-parameter', {
      key,
      headers: CROSS,
      body: { run_id: id, key: 'lr', value: '0.1' },
    });
    expect(ok.status).toBe(200);
  });
});

describe('the artifact routes with the session cookie', () => {
  let id: string;
  beforeAll(async () => {
    id = await newRun();
    const put = await call('PUT', `/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${id}/artifacts/r.txt`, {
      key,
      body: 'report',
    });
    expect(put.status).toBe(200);
  });
  it.each([
    ['a download', () => `/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${id}/artifacts/r.txt`],
    ['a download on /ajax-api', () => `/ajax-api/2.0/mlflow-artifacts/artifacts/${experimentId}/${id}/artifacts/r.txt`],
    ['the listing', () => `/api/2.0/mlflow-artifacts/artifacts?path=${experimentId}/${id}/artifacts`],
    ['get-artifact', () => `/get-artifact?run_id=${id}&path=r.txt`],
  ])('refuses %s from another site, serves it to this one', async (_what, path) => {
    const cross = await call('GET', path(), { cookie: true, headers: CROSS });
    expect(cross.status).toBe(403);
    expect(((await cross.json()) as { error_code: string }).error_code).toBe('PERMISSION_DENIED');
    const evil = await call('GET', path(), { cookie: true, headers: { origin: 'http://evil.test' } });
    expect(evil.status).toBe(403);
    expect((await call('GET', path(), { cookie: true, headers: SAME })).status).toBe(200);
    expect((await call('GET', path(), { key, headers: CROSS })).status).toBe(200);
  });
});

describe('the export with the session cookie', () => {
  const path = () => `/api/export?project=${experimentId}`;
  it('refuses a cross-site export (403 naming the header), serves this site, a typed address and a key', async () => {
    for (const headers of [CROSS, { origin: 'http://evil.test' }]) {
      const res = await call('GET', path(), { cookie: true, headers, handler: exporter });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/Sec-Fetch-Site|Origin/);
    }
    for (const o of [
      { cookie: true, headers: SAME },
      { cookie: true, headers: { 'sec-fetch-site': 'none' } },
      { cookie: true },
      { key, headers: CROSS },
    ]) {
      const res = await call('GET', path(), { ...o, handler: exporter });
      expect(res.status, JSON.stringify(o)).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/gzip');
      await res.body?.cancel();
    }
  });
});

describe("MLflow writes and the key's ingestion rate", () => {
  it('charges params and tags too, before anything is written (429 REQUEST_LIMIT_EXCEEDED with Retry-After)', async () => {
    // 10 units a second over a 4-second window: 40 units before the limit
    const limiter = new RedisRateLimiter(redis, 10, `aft:rate-mlflow-${randomBytes(4).toString('hex')}`, 4000);
    const limited = createMlflowHandler({ db: t.db, notifier, auth: null, artifactDir: dir, rateLimiter: limiter });
    const id = await newRun();
    const kv = (prefix: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({ key: `${prefix}${i}`, value: 'v' }));
    const first = await call('POST', '/api/2.0/mlflow/runs/log-batch', {
      key,
      handler: limited,
      body: { run_id: id, params: kv('p', 30) },
    });
    expect(first.status).toBe(200);
    const second = await call('POST', '/api/2.0/mlflow/runs/log-batch', {
      key,
      handler: limited,
      body: { run_id: id, tags: kv('t', 20) },
    });
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(((await second.json()) as { error_code: string }).error_code).toBe('REQUEST_LIMIT_EXCEEDED');
    expect(Object.keys((await tagsOf(id)) ?? {}).filter((k) => k.startsWith('t'))).toEqual([]);
    const tag = await call('POST', '/api/2.0/mlflow/runs/set-tag', {
      key,
      handler: limited,
      body: { run_id: id, key: 'one', value: 'more' },
    });
    expect(tag.status).toBe(429);
  });
});

describe('tRPC', () => {
  const trpc = () =>
    createApiHandler({ db: t.db, notifier, auth: createAuth({ db: t.db, secret: SECRET, baseURL: ORIGIN }) });
  const invitations = async () =>
    (await t.db.pool.query('SELECT count(*)::int AS n FROM invitation')).rows[0].n as number;

  it('refuses a POST that is not JSON (a foreign form can send those without asking), writing nothing', async () => {
    const before = await invitations();
    for (const type of [
      'text/plain',
      'multipart/form-data; boundary=x',
      'application/x-www-form-urlencoded',
      'application/octet-stream',
    ]) {
      const res = await trpc()(
        new Request(`${ORIGIN}/api/trpc/invitations.create`, {
          method: 'POST',
          headers: { cookie, 'content-type': type, ...SAME },
          body: type.startsWith('multipart') ? '--x--\r\n' : '{}',
        }),
      );
      expect(res.status, type).toBe(415);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/content-type/);
    }
    expect(await invitations()).toBe(before);
  });

  it('refuses a cookie request from another site, and takes it from this one', async () => {
    const before = await invitations();
    const post = (headers: Record<string, string>) =>
      trpc()(
        new Request(`${ORIGIN}/api/trpc/invitations.create`, {
          method: 'POST',
          headers: { cookie, 'content-type': 'application/json', ...headers },
          body: '{}',
        }),
      );
    expect((await post(CROSS)).status).toBe(403);
    expect((await post({ 'sec-fetch-site': 'same-site' })).status).toBe(403);
    expect((await post({ origin: 'https://evil.example' })).status).toBe(403);
    expect((await post({})).status).toBe(403);
    expect(await invitations()).toBe(before);
    expect((await post(SAME)).status).toBe(200);
    expect((await post({ origin: ORIGIN })).status).toBe(200);
    expect(await invitations()).toBe(before + 2);
  });

  it('counts calls of a batch whose commas are %-encoded', async () => {
    const paths = Array.from({ length: 40 }, () => 'projects.list').join('%2C');
    const input = encodeURIComponent(JSON.stringify(Object.fromEntries(Array.from({ length: 40 }, (_, i) => [i, {}]))));
    const res = await trpc()(
      new Request(`${ORIGIN}/api/trpc/${paths}?batch=1&input=${input}`, {
        headers: { authorization: `Bearer ${key}` },
      }),
    );
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
      /40 calls; one request carries at most 20/,
    );
  });
});
