/**
 * Authorization, table-driven over the whole router. Every procedure declares what it needs (a permission in the
 * team, or `account` for a signed-in person), and has a row in INPUTS: a valid input built on fresh fixtures of
 * the team "home". Each procedure is then called by every kind of caller:
 *   - the owner, a member and a viewer of "home" (signed-in users), and "home" keys with one scope each: what the
 *     role or scope allows must work (no error at all), what it does not must be refused with 403 and a message;
 *   - the owner of another team and a key of another team: they must get the very same answer as for ids that do
 *     not exist (no leak of existence), and whatever they get back must hold nothing of "home".
 * A procedure added without a decision, or without a row here, fails the first test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRPCError } from '@trpc/server';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { RunNotifier } from '@aft/db';
import { createRedis, dropTestQueues, JobProducer, testQueueName } from '@aft/queue';
import { appRouter, createCallerFactory, createContextInner, ROLE_PERMISSIONS, type ContextInner } from '../src';
import { createMember, createTeamWithKey } from '../src/testing';
import { DECISIONS, fixture as homeFixture, INPUTS, procedures, uniq } from './procedure-table';

let t: TestDatabase;
let notifier: RunNotifier;
let producer: JobProducer;
const fixture = () => homeFixture(t.db);

interface Caller {
  name: string;
  ctx: Partial<ContextInner>;
  /** What the caller may do in "home" (null: not in "home" at all). */
  perms: readonly string[] | null;
  via: 'user' | 'key';
}
const callers: Caller[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
  notifier = new RunNotifier(t.url);
  producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), testQueueName());
  for (const role of ['owner', 'member', 'viewer'] as const) {
    const { user } = await createMember(t.db, 'home', role);
    callers.push({ name: `home ${role}`, ctx: { userId: user.id }, perms: ROLE_PERMISSIONS[role], via: 'user' });
  }
  for (const s of ['read', 'log', 'launch'] as const) {
    const { key } = await createTeamWithKey(t.db, 'home', [s]);
    callers.push({ name: `home key with ${s}`, ctx: { apiKey: key }, perms: [s], via: 'key' });
  }
  const { user } = await createMember(t.db, 'away', 'owner');
  callers.push({ name: 'owner of another team', ctx: { userId: user.id }, perms: null, via: 'user' });
  const { key } = await createTeamWithKey(t.db, 'away');
  callers.push({ name: 'key of another team', ctx: { apiKey: key }, perms: null, via: 'key' });
});
afterAll(async () => {
  await dropTestQueues(producer);
  await notifier?.close();
  await t?.drop();
});

function callerFor(c: Caller) {
  return createCallerFactory(appRouter)(
    createContextInner({ db: t.db, notifier, apiKey: null, jobs: producer, ...c.ctx }),
  );
}

/** Calls a procedure by path: 'OK' with what it returned, or the TRPCError's code and message. */
async function outcome(c: Caller, path: string, input: unknown): Promise<{ res: string; data?: unknown }> {
  const fn = path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], callerFor(c)) as (
    i: unknown,
  ) => unknown;
  try {
    let data = await fn(input);
    if (data && typeof (data as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
      const it = (data as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      data = await Promise.race([it.next(), new Promise((res) => setTimeout(res, 500))]);
      await it.return?.();
    }
    return { res: 'OK', data };
  } catch (e) {
    if (e instanceof TRPCError) return { res: `${e.code}: ${e.message}` };
    throw e;
  }
}

function expectedDenial(c: Caller, scope: string, keyOnly: boolean): string | null {
  if (scope === 'account') return c.via === 'key' ? 'FORBIDDEN: this needs a signed-in user, not an API key' : null;
  if (keyOnly && c.via !== 'key')
    return 'FORBIDDEN: logging needs an API key: send it as `x-api-key: <key>` or `Authorization: Bearer <key>`';
  if (c.perms!.includes(scope)) return null;
  if (c.via === 'key') {
    return scope === 'manage'
      ? 'FORBIDDEN: managing members, invitations and keys needs a signed-in owner, not an API key'
      : `FORBIDDEN: this API key lacks the \`${scope}\` scope`;
  }
  const role = c.name.split(' ')[1];
  const allowed = Object.entries(ROLE_PERMISSIONS)
    .filter(([, p]) => p.includes(scope as never))
    .map(([r]) => r);
  return `FORBIDDEN: your role in this team is ${role}; this needs ${allowed.join(' or ')}`;
}

describe('every procedure', () => {
  it('has an authorization decision and a row in the table', () => {
    expect(procedures.length).toBeGreaterThan(35);
    const undecided = procedures.filter(([, p]) => !DECISIONS.includes(p._def.meta?.scope ?? '')).map(([path]) => path);
    expect(undecided, 'procedures without an authorization decision').toEqual([]);
    const untabled = procedures.map(([path]) => path).filter((path) => !INPUTS[path]);
    expect(untabled, 'procedures without a row in INPUTS').toEqual([]);
    const declared = Object.fromEntries(
      procedures.map(([path, p]) => [path, `${p._def.meta?.scope}${p._def.meta?.keyOnly ? '*' : ''}`]),
    );
    expect(declared, 'what each procedure declares, against the table').toEqual(
      Object.fromEntries(Object.entries(INPUTS).map(([k, v]) => [k, v.need])),
    );
  });

  it.each(procedures.map(([path, p]) => [path, p._def.meta?.scope ?? '?', p._def.meta?.keyOnly ?? false] as const))(
    '%s (%s) allows and denies by role and scope',
    async (path, scope, keyOnly) => {
      for (const c of callers.filter((x) => x.perms)) {
        const f = await fixture();
        const { res } = await outcome(c, path, INPUTS[path]!.input(f));
        const role = c.via === 'user' ? c.name.split(' ')[1]! : null;
        const denial = expectedDenial(c, scope, keyOnly) ?? INPUTS[path]!.deny?.({ via: c.via, role }) ?? null;
        if (denial instanceof RegExp) expect(res, `${path} by ${c.name}`).toMatch(denial);
        else if (denial) expect(res, `${path} by ${c.name}`).toBe(denial);
        else expect(res, `${path} by ${c.name}`).toBe('OK');
      }
    },
  );

  it.each(procedures.filter(([path]) => !INPUTS[path]?.capability).map(([path]) => [path]))(
    '%s tells another team nothing about what "home" has',
    async (path) => {
      for (const c of callers.filter((x) => !x.perms)) {
        const f = await fixture();
        const real = INPUTS[path]!.input(f);
        const ids = Object.values(f);
        // built anew (fresh names for creations), then pointed at ids that do not exist
        let json = JSON.stringify(INPUTS[path]!.input(f) ?? null);
        for (const id of ids) json = json.replaceAll(id, `zz${id.slice(2)}`);
        const fake = JSON.parse(json) as unknown;
        const a = await outcome(c, path, real);
        const b = await outcome(c, path, fake === null ? undefined : fake);
        const norm = (s: string) =>
          ids.reduce((acc, id) => acc.replaceAll(id, 'ID').replaceAll(`zz${id.slice(2)}`, 'ID'), s);
        expect(norm(a.res), `${path} by ${c.name}`).toBe(norm(b.res));
        if (a.res === 'OK') {
          const out = JSON.stringify(a.data, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) ?? '';
          for (const id of ids) expect(out.includes(id), `${path} by ${c.name} returned ${id} of "home"`).toBe(false);
          expect(out.includes(f.projectName), `${path} by ${c.name} returned a "home" project`).toBe(false);
        }
      }
    },
  );
});

describe('API keys', () => {
  it('a revoked key is refused on its next request; a log-only key cannot launch', async () => {
    const owner = callers.find((c) => c.name === 'home owner')!;
    const created = (await callerFor(owner).keys.create({ name: 'short-lived', scopes: ['log', 'read'] })) as {
      id: string;
      key: string;
    };
    const viaKey: Caller = { name: 'fresh key', ctx: { apiKey: created.key }, perms: ['log', 'read'], via: 'key' };
    expect((await outcome(viaKey, 'projects.list', undefined)).res).toBe('OK');
    expect((await outcome(viaKey, 'runs.launch', INPUTS['runs.launch']!.input(await fixture()))).res).toBe(
      'FORBIDDEN: this API key lacks the `launch` scope',
    );
    await callerFor(owner).keys.revoke({ id: created.id });
    expect((await outcome(viaKey, 'projects.list', undefined)).res).toBe(
      'UNAUTHORIZED: API key not recognised or revoked',
    );
    const actions = await t.db.prisma.auditEvent.findMany({ where: { target: created.id }, orderBy: { id: 'asc' } });
    expect(actions.map((a) => a.action)).toEqual(['key.create', 'key.revoke']);
  });

  it('run deletions are in the audit log, with who deleted what', async () => {
    const member = callers.find((c) => c.name === 'home member')!;
    const f = await fixture();
    expect((await outcome(member, 'runs.delete', { id: f.runId })).res).toBe('OK');
    expect(await t.db.prisma.run.count({ where: { id: f.runId } })).toBe(0);
    const ev = await t.db.prisma.auditEvent.findFirstOrThrow({ where: { action: 'run.delete', target: f.runId } });
    expect(ev.userId).toBe(member.ctx.userId);
    expect(ev.details).toMatchObject({ name: expect.stringMatching(/^r-/) });
  });

  it('a team keeps at least one owner', async () => {
    const { user, team } = await createMember(t.db, `solo-${uniq()}`, 'owner');
    const solo: Caller = { name: 'solo owner', ctx: { userId: user.id }, perms: ROLE_PERMISSIONS.owner, via: 'user' };
    expect((await outcome(solo, 'teams.setRole', { userId: user.id, role: 'member' })).res).toMatch(
      /^CONFLICT: a team needs at least one owner/,
    );
    expect((await outcome(solo, 'teams.removeMember', { userId: user.id })).res).toMatch(/^CONFLICT/);
    expect(await t.db.prisma.membership.count({ where: { teamId: team.id, role: 'owner' } })).toBe(1);
  });
});
