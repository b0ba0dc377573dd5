/**
 * Live streams (runs.onUpdate over SSE, through the real handler) do not outlive the access they were opened with:
 * after a key is revoked, a member removed or a session signed out, the stream ends within a few seconds and sends
 * nothing written after that. A stream also ends at its maximum lifetime with a retryable error, and a reconnect with
 * the last event id resumes without loss.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createAuth, type Auth } from '../src';
import { createTeamWithKey, createTestHandler } from '../src/testing';

const ORIGIN = 'http://127.0.0.1:3997';
let t: TestDatabase;
let auth: Auth;
let api: ReturnType<typeof createTestHandler>;

beforeAll(async () => {
  t = await createTestDatabase();
  auth = createAuth({ db: t.db, secret: 'streams-secret-streams-secret-0123456', baseURL: ORIGIN });
  // re-checks every second while idle, so the idle cases finish quickly
  api = createTestHandler(t.db, t.url, auth, null, null, { streams: { recheckMs: 1_000 } });
});
afterAll(async () => {
  await api?.notifier.close();
  await t?.drop();
});

const suffix = () => randomBytes(4).toString('hex');

interface SseEvent {
  event: string;
  id?: string;
  data: string;
}

/** Opens runs.onUpdate over the handler and parses its events as they arrive. */
async function openStream(
  handler: (req: Request) => Promise<Response>,
  runId: string,
  headers: Record<string, string>,
  lastEventId?: string,
) {
  const ac = new AbortController();
  const input = encodeURIComponent(JSON.stringify({ runId }));
  const res = await handler(
    new Request(`${ORIGIN}/api/trpc/runs.onUpdate?input=${input}`, {
      headers: { ...headers, accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
      signal: ac.signal,
    }),
  );
  expect(res.status).toBe(200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ended = false;
  /** The next event other than pings, or null when the stream has ended; fails after `ms`. */
  const next = async (ms = 8_000): Promise<SseEvent | null> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const cut = buf.indexOf('\n\n');
      if (cut >= 0) {
        const raw = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const e: SseEvent = { event: 'message', data: '' };
        for (const line of raw.split('\n')) {
          const i = line.indexOf(':');
          if (i <= 0) continue;
          const [k, v] = [line.slice(0, i), line.slice(i + 1).replace(/^ /, '')];
          if (k === 'event') e.event = v;
          else if (k === 'id') e.id = v;
          else if (k === 'data') e.data += v;
        }
        if (e.event === 'ping') continue;
        return e;
      }
      if (ended) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no event within ${ms} ms`);
      const r = await Promise.race([
        reader.read(),
        new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), left)),
      ]);
      if (r === 'timeout') throw new Error(`no event within ${ms} ms`);
      if (r.done) ended = true;
      else buf += r.value;
    }
  };
  /** Every event until the stream ends (within `ms`). */
  const rest = async (ms = 8_000) => {
    const out: SseEvent[] = [];
    const deadline = Date.now() + ms;
    for (let e = await next(ms); e; e = await next(Math.max(1, deadline - Date.now()))) out.push(e);
    return out;
  };
  return { next, rest, close: () => ac.abort() };
}

async function newRun(key: string) {
  const r = await api.call('runs.create', { project: `p-${suffix()}`, name: 'live' }, { key });
  expect(r.status).toBe(200);
  return (r.json.result!.data as { id: string }).id;
}

const logPoints = async (key: string, runId: string, from: number) => {
  const points = Array.from({ length: 5 }, (_, i) => ({ key: 'loss', step: from + i, value: 1 / (from + i + 1) }));
  const r = await api.call('metrics.log', { runId, points }, { key });
  expect(r.status).toBe(200);
};

const writeSeq = async (runId: string) =>
  Number((await t.db.prisma.run.findUniqueOrThrow({ where: { id: runId }, select: { writeSeq: true } })).writeSeq);

/** The data events carry the run's write sequence as their id; none may be past `seq`. */
function expectNothingAfter(events: SseEvent[], seq: number) {
  const data = events.filter((e) => e.event === 'message');
  for (const e of data) expect(Number(e.id)).toBeLessThanOrEqual(seq);
}

function errorCode(events: SseEvent[]): string | undefined {
  const e = events.find((x) => x.event === 'serialized-error');
  return e ? (JSON.parse(e.data) as { data: { code: string } }).data.code : undefined;
}

/** A new account, signed in: its session cookie and id. */
async function signIn(email: string) {
  const post = (path: string, body: unknown) =>
    auth.handler(
      new Request(`${ORIGIN}/api/auth/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: ORIGIN },
        body: JSON.stringify(body),
      }),
    );
  const password = 'stream password 123';
  expect((await post('sign-up/email', { email, password, name: 'Streamer' })).status).toBe(200);
  const res = await post('sign-in/email', { email, password });
  expect(res.status).toBe(200);
  const cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .join('; ');
  const user = await t.db.prisma.user.findUniqueOrThrow({ where: { email } });
  return { cookie, userId: user.id };
}

describe('runs.onUpdate re-checks access', () => {
  it('a revoked key: the stream ends at the next write and sends nothing written after the revocation', async () => {
    const slug = `rev-${suffix()}`;
    const { team, key: writer } = await createTeamWithKey(t.db, slug);
    const { key: reader } = await createTeamWithKey(t.db, slug, ['read']);
    const runId = await newRun(writer);
    const s = await openStream(api.handler, runId, { 'x-api-key': reader });
    expect((await s.next())!.event).toBe('connected');
    expect((await s.next())!.event).toBe('message');

    await t.db.pool.query('UPDATE api_key SET revoked_at = now() WHERE team_id = $1 AND scopes = $2', [
      team.id,
      ['read'],
    ]);
    const revokedAt = await writeSeq(runId);
    const started = Date.now();
    await logPoints(writer, runId, 0);
    const after = await s.rest(5_000);
    expect(Date.now() - started).toBeLessThan(5_000);
    expectNothingAfter(after, revokedAt);
    expect(errorCode(after)).toBe('UNAUTHORIZED');
  });

  it('a revoked key: an idle stream ends within the re-check interval', async () => {
    const slug = `idle-${suffix()}`;
    const { team, key: writer } = await createTeamWithKey(t.db, slug);
    const { key: reader } = await createTeamWithKey(t.db, slug, ['read']);
    const runId = await newRun(writer);
    const s = await openStream(api.handler, runId, { 'x-api-key': reader });
    await s.next();
    await s.next();
    await t.db.pool.query('UPDATE api_key SET revoked_at = now() WHERE team_id = $1 AND scopes = $2', [
      team.id,
      ['read'],
    ]);
    const started = Date.now();
    const after = await s.rest(4_000);
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(errorCode(after)).toBe('UNAUTHORIZED');
  });

  it('a member removed from the team: the stream ends and sends nothing written after the removal', async () => {
    const slug = `mem-${suffix()}`;
    const { team, key: writer } = await createTeamWithKey(t.db, slug);
    const { cookie, userId } = await signIn(`member-${suffix()}@lab.test`);
    await t.db.prisma.membership.create({ data: { teamId: team.id, userId, role: 'viewer' } });
    const runId = await newRun(writer);
    const s = await openStream(api.handler, runId, { cookie: `${cookie}; aft_team=${slug}` });
    expect((await s.next())!.event).toBe('connected');
    expect((await s.next())!.event).toBe('message');

    await t.db.prisma.membership.delete({ where: { teamId_userId: { teamId: team.id, userId } } });
    const removedAt = await writeSeq(runId);
    await logPoints(writer, runId, 0);
    const after = await s.rest(5_000);
    expectNothingAfter(after, removedAt);
    expect(errorCode(after)).toBe('FORBIDDEN');
  });

  it('a signed-out session: the stream ends and sends nothing written after the sign-out', async () => {
    const slug = `out-${suffix()}`;
    const { team, key: writer } = await createTeamWithKey(t.db, slug);
    const { cookie, userId } = await signIn(`out-${suffix()}@lab.test`);
    await t.db.prisma.membership.create({ data: { teamId: team.id, userId, role: 'member' } });
    const runId = await newRun(writer);
    const s = await openStream(api.handler, runId, { cookie: `${cookie}; aft_team=${slug}` });
    await s.next();
    await s.next();

    const out = await auth.handler(
      new Request(`${ORIGIN}/api/auth/sign-out`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: ORIGIN, cookie },
        body: '{}',
      }),
    );
    expect(out.status).toBe(200);
    const outAt = await writeSeq(runId);
    await logPoints(writer, runId, 0);
    const after = await s.rest(5_000);
    expectNothingAfter(after, outAt);
    expect(errorCode(after)).toBe('UNAUTHORIZED');
  });

  it('a key that keeps its access keeps streaming', async () => {
    const { key } = await createTeamWithKey(t.db, `keep-${suffix()}`);
    const runId = await newRun(key);
    const s = await openStream(api.handler, runId, { 'x-api-key': key });
    await s.next();
    await s.next();
    // past a few re-checks
    await new Promise((r) => setTimeout(r, 2_500));
    await logPoints(key, runId, 0);
    const e = await s.next();
    expect(e!.event).toBe('message');
    expect(Number(e!.id)).toBe(await writeSeq(runId));
    s.close();
  });
});

describe('runs.onUpdate lifetime', () => {
  it('ends at its maximum lifetime with a retryable error; a reconnect with the last id misses nothing', async () => {
    const short = createTestHandler(t.db, t.url, null, null, null, { streams: { maxLifetimeMs: 1_500 } });
    try {
      const { key } = await createTeamWithKey(t.db, `life-${suffix()}`);
      const runId = await newRun(key);
      const started = Date.now();
      const s = await openStream(short.handler, runId, { 'x-api-key': key });
      await s.next();
      const first = (await s.next())!;
      const after = await s.rest(5_000);
      expect(Date.now() - started).toBeLessThan(4_000);
      // SERVICE_UNAVAILABLE is one of tRPC's retryable codes: its SSE client reconnects on its own
      expect(errorCode(after)).toBe('SERVICE_UNAVAILABLE');
      expect(after.some((e) => e.event === 'return')).toBe(false);

      await logPoints(key, runId, 0);
      const again = await openStream(short.handler, runId, { 'x-api-key': key }, first.id);
      await again.next();
      const resumed = (await again.next())!;
      expect(Number(resumed.id)).toBe(await writeSeq(runId));
      again.close();
    } finally {
      await short.notifier.close();
    }
  });
});
