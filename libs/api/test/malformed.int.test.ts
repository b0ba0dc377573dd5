/**
 * Property-based: generated malformed inputs, sent over HTTP to every procedure by a caller allowed to use it,
 * never make the server answer 5xx, and every refusal carries a message. Inputs are arbitrary JSON, valid inputs
 * with fields dropped, retyped or added, and bodies that are not JSON at all.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRPCError } from '@trpc/server';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createRedis, dropTestQueues, JobProducer, testQueueName } from '@aft/queue';
import { appRouter, createAuth, createCallerFactory, createContextInner } from '../src';
import { createTeamWithKey, createTestHandler } from '../src/testing';
import { watchEventLoop } from './event-loop';
import { fixture, INPUTS, procedures, type Fx } from './procedure-table';

const ORIGIN = 'http://127.0.0.1:3998';
let t: TestDatabase;
let api: ReturnType<typeof createTestHandler>;
let producer: JobProducer;
let cookie: string;
let key: string;
let userId: string;
let fx: Fx;

beforeAll(async () => {
  t = await createTestDatabase();
  const auth = createAuth({ db: t.db, secret: 'malformed-secret-malformed-secret-0123', baseURL: ORIGIN });
  producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), testQueueName());
  api = createTestHandler(t.db, t.url, auth, producer);
  // sign-up makes the account, sign-in the session (as the sign-in form does)
  const authPost = (path: string, body: unknown) =>
    auth.handler(
      new Request(`${ORIGIN}/api/auth/${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: ORIGIN },
        body: JSON.stringify(body),
      }),
    );
  await authPost('sign-up/email', { email: 'fuzz@lab.test', password: 'fuzz password 123', name: 'Fuzz' });
  const res = await authPost('sign-in/email', { email: 'fuzz@lab.test', password: 'fuzz password 123' });
  cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .join('; ');
  const user = await t.db.prisma.user.findUniqueOrThrow({
    where: { email: 'fuzz@lab.test' },
    include: { memberships: { include: { team: true } } },
  });
  userId = user.id;
  const home = user.memberships[0]!.team;
  // the fixtures live in a team called "home": make the fuzzing user its owner too, and work there
  await t.db.prisma.team.update({ where: { id: home.id }, data: { slug: 'home' } });
  key = (await createTeamWithKey(t.db, 'home')).key;
  fx = await fixture(t.db);
});
afterAll(async () => {
  await dropTestQueues(producer);
  await api?.notifier.close();
  await t?.drop();
});

/** A valid input with some fields dropped, retyped or added. */
function mutated(valid: unknown): fc.Arbitrary<unknown> {
  if (!valid || typeof valid !== 'object') return fc.jsonValue();
  const keys = Object.keys(valid as object);
  return fc
    .record({
      drop: fc.subarray(keys),
      retype: fc.dictionary(
        fc.constantFrom(...keys, 'extra'),
        fc.oneof(fc.jsonValue(), fc.string({ maxLength: 5000 }), fc.double()),
      ),
    })
    .map(({ drop, retype }) => {
      const o: Record<string, unknown> = { ...(valid as Record<string, unknown>) };
      for (const k of drop) delete o[k];
      return { ...o, ...retype };
    });
}

const inputArb = (valid: unknown) =>
  fc.oneof(
    { weight: 2, arbitrary: mutated(valid).map((v) => ({ json: v })) },
    { weight: 2, arbitrary: fc.jsonValue().map((v) => ({ json: v })) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }).map((raw) => ({ raw })) },
  );

const seen = new Set<number>();

describe('malformed input', () => {
  // no input may hold the event loop (every other user of the server waits): measured over the whole suite
  let loop: ReturnType<typeof watchEventLoop>;
  beforeAll(() => {
    loop = watchEventLoop('tRPC malformed input (all procedures)');
  });
  afterAll(() => {
    loop.stop();
    // the generators reached the procedures: some inputs were refused as malformed, some were accepted
    expect(seen.has(400)).toBe(true);
    expect(seen.has(200)).toBe(true);
  });

  it.each(
    procedures
      .filter(([, p]) => p._def.type !== 'subscription')
      .map(([path, p]) => [path, p._def.type, p._def.meta?.keyOnly ?? false] as const),
  )('%s (%s) never answers 5xx and always says what was wrong', async (path, type, keyOnly) => {
    const valid = INPUTS[path]!.input(fx);
    await fc.assert(
      fc.asyncProperty(inputArb(valid), async (inp) => {
        const body = 'raw' in inp ? inp.raw : JSON.stringify(inp.json ?? null);
        const headers: Record<string, string> = keyOnly
          ? { 'x-api-key': key }
          : { cookie: `${cookie}; aft_team=home`, 'sec-fetch-site': 'same-origin' };
        const url =
          type === 'query'
            ? `${ORIGIN}/api/trpc/${path}?input=${encodeURIComponent(body)}`
            : `${ORIGIN}/api/trpc/${path}`;
        const res = await api.handler(
          new Request(
            url,
            type === 'query'
              ? { headers }
              : { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body },
          ),
        );
        const json = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
        expect(res.status, `${path} ${body.slice(0, 200)} → ${JSON.stringify(json).slice(0, 300)}`).toBeLessThan(500);
        // the caller may use the procedure: a refusal is about the input, never about who asked
        expect([401, 403], `${path} ${body.slice(0, 200)} → ${JSON.stringify(json).slice(0, 300)}`).not.toContain(
          res.status,
        );
        seen.add(res.status);
        if (res.status >= 400) expect(json?.error?.message, `${path} ${body.slice(0, 200)}`).toMatch(/\S/);
      }),
      { numRuns: 40, seed: 4242 },
    );
  });

  it.each(procedures.filter(([, p]) => p._def.type === 'subscription').map(([path]) => [path]))(
    '%s (subscription) refuses malformed input with a message before streaming',
    async (path) => {
      const valid = INPUTS[path]!.input(fx);
      const caller = createCallerFactory(appRouter)(
        createContextInner({ db: t.db, notifier: api.notifier, apiKey: null, userId, team: 'home' }),
      );
      const fn = path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], caller) as (
        i: unknown,
      ) => Promise<AsyncIterable<unknown>>;
      await fc.assert(
        fc.asyncProperty(mutated(valid), async (inp) => {
          try {
            const it = (await fn(inp))[Symbol.asyncIterator]();
            await Promise.race([it.next(), new Promise((r) => setTimeout(r, 200))]);
            await it.return?.();
          } catch (e) {
            expect(e).toBeInstanceOf(TRPCError);
            expect((e as TRPCError).code).not.toBe('INTERNAL_SERVER_ERROR');
            expect((e as TRPCError).message).toMatch(/\S/);
          }
        }),
        { numRuns: 30, seed: 4242 },
      );
    },
  );
});

describe('hostile bodies up to the size limit', () => {
  it('are answered with a 4xx without holding the event loop', async () => {
    const MAX = 8 * 1024 * 1024 - 1024;
    const fill = (head: string, unit: string, tail: string) =>
      head + unit.repeat(Math.floor((MAX - head.length - tail.length) / unit.length)) + tail;
    const bodies: [string, string][] = [
      ['8 MB of spaces', fill('{"runId":"r","points":[', ' ', ']}')],
      ['an 8 MB string', fill('{"runId":"', 'NaN ', '","points":[]}')],
      ['escaped quotes', fill('{"runId":"', '\\"', '","points":[]}')],
      // JSON.parse alone held the loop ~3 s on these: refused by their shape before they are parsed
      ['8 MB of empty objects', fill('{"runId":"r","points":[', '{},', '{}]}')],
      ['8 MB of nesting', fill('', '[', '')],
      ['8 MB of numbers', fill('{"runId":"r","points":[', '1,', '1]}')],
    ];
    const loop = watchEventLoop('tRPC hostile bodies', { p99: false });
    let worst = { what: '', ms: 0 };
    for (const [what, body] of bodies) {
      const t0 = performance.now();
      const res = await api.handler(
        new Request(`${ORIGIN}/api/trpc/metrics.log`, {
          method: 'POST',
          headers: { 'x-api-key': key, 'content-type': 'application/json' },
          body,
        }),
      );
      await res.arrayBuffer();
      const ms = performance.now() - t0;
      console.info(`[tRPC hostile bodies] ${what}: ${res.status} in ${ms.toFixed(0)} ms`);
      if (ms > worst.ms) worst = { what, ms };
      expect(res.status, what).toBeGreaterThanOrEqual(400);
      if (/empty objects|nesting|numbers/.test(what)) expect(res.status, what).toBe(413);
      expect(res.status, what).toBeLessThan(500);
    }
    loop.stop();
    console.info(`[tRPC hostile bodies] worst answer: ${worst.what} in ${worst.ms.toFixed(0)} ms`);
  }, 120_000);
});
