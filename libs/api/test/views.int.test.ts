/**
 * Saved views through the router against a real Postgres: saving, listing, renaming and deleting, names unique per
 * project and kind, who may save and change a view, another team's views as missing, and the query checked against
 * the parameters of its page. Each refusal is checked for its HTTP status and for naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import { TRPCError } from '@trpc/server';
import { ZodError } from 'zod';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { RunNotifier } from '@aft/db';
import { appRouter, createCallerFactory, createContextInner, type Role } from '../src';
import { createMember, createTeamWithKey } from '../src/testing';
import { describeZodError } from '../src/trpc';

let t: TestDatabase;
let notifier: RunNotifier;
const as = (ctx: { userId?: string; apiKey?: string }) =>
  createCallerFactory(appRouter)(createContextInner({ db: t.db, notifier, apiKey: null, ...ctx }));
type Caller = ReturnType<typeof as>;
const people = {} as Record<Role | 'member2' | 'stranger', Caller>;
let key: Caller;
let projectId: string;
let strangerProjectId: string;
const uniq = () => Math.random().toString(36).slice(2, 8);

/** The refusal's HTTP status and message as a client reads them (the error formatter describes zod's issues). */
async function refusal(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TRPCError) {
      const message = e.cause instanceof ZodError ? describeZodError(e.cause) : e.message;
      return { status: getHTTPStatusCodeFromError(e), message };
    }
    throw e;
  }
  throw new Error('expected a refusal, got a result');
}

beforeAll(async () => {
  t = await createTestDatabase();
  notifier = new RunNotifier(t.url);
  for (const role of ['owner', 'member', 'viewer'] as const) {
    people[role] = as({ userId: (await createMember(t.db, 'lab', role)).user.id });
  }
  people.member2 = as({ userId: (await createMember(t.db, 'lab', 'member')).user.id });
  people.stranger = as({ userId: (await createMember(t.db, 'rivals', 'owner')).user.id });
  key = as({ apiKey: (await createTeamWithKey(t.db, 'lab', ['read', 'log', 'launch'])).key });
  projectId = (await people.owner.projects.create({ name: `views-${uniq()}` })).id;
  strangerProjectId = (await people.stranger.projects.create({ name: `theirs-${uniq()}` })).id;
});
afterAll(async () => {
  await notifier?.close();
  await t?.drop();
});

describe('saved views', () => {
  it('are saved, listed, renamed and deleted, each in the audit log', async () => {
    const v = await people.member.views.create({
      projectId,
      kind: 'runs',
      name: '  grouped by method ',
      query: '?group=1&cols=test%2Ftask_accuracy&status=succeeded',
    });
    // stored trimmed and normalized: exactly what the page is opened with
    expect(v).toMatchObject({ name: 'grouped by method', query: 'group=1&cols=test%2Ftask_accuracy&status=succeeded' });
    expect(v.href).toBe(`/projects/${projectId}?${v.query}`);
    const cmp = await people.member.views.create({
      projectId,
      kind: 'compare',
      name: 'grouped by method',
      query: `project=${projectId}&control=vft`,
    });
    expect(cmp.href).toBe(`/compare?project=${projectId}&control=vft`);

    // the whole team sees them, each kind in its own list; only the creator (and owners) may change one
    const seen = await people.viewer.views.list({ projectId, kind: 'runs' });
    expect(seen.items.map((i) => i.name)).toEqual(['grouped by method']);
    expect(seen.canSave).toBe(false);
    expect(seen.items[0]!.canChange).toBe(false);
    expect((await people.member.views.list({ projectId, kind: 'runs' })).items[0]!.canChange).toBe(true);
    expect((await people.member2.views.list({ projectId, kind: 'runs' })).items[0]!.canChange).toBe(false);
    expect((await people.owner.views.list({ projectId, kind: 'runs' })).items[0]!.canChange).toBe(true);
    expect((await people.viewer.views.list({ projectId, kind: 'compare' })).items.map((i) => i.id)).toEqual([cmp.id]);
    expect(await people.viewer.views.get({ id: v.id })).toMatchObject({ id: v.id, href: v.href });

    const renamed = await people.member.views.rename({ id: v.id, name: 'by method' });
    expect(renamed.name).toBe('by method');
    expect(renamed.updatedAt.getTime()).toBeGreaterThanOrEqual(v.updatedAt.getTime());
    await people.owner.views.delete({ id: cmp.id });
    await people.member.views.delete({ id: v.id });
    expect((await people.owner.views.list({ projectId, kind: 'runs' })).items).toEqual([]);
    expect((await refusal(people.owner.views.get({ id: v.id }))).status).toBe(404);

    const events = await t.db.prisma.auditEvent.findMany({
      where: { target: { in: [v.id, cmp.id] } },
      orderBy: { id: 'asc' },
    });
    expect(events.map((e) => [e.action, e.target])).toEqual([
      ['view.create', v.id],
      ['view.create', cmp.id],
      ['view.rename', v.id],
      ['view.delete', cmp.id],
      ['view.delete', v.id],
    ]);
    expect(events[2]!.details).toMatchObject({ from: 'grouped by method', to: 'by method' });
  });

  it('keeps names unique per project and kind: a second save or a rename onto a name is a 409 naming `name`', async () => {
    const name = `mine-${uniq()}`;
    await people.member.views.create({ projectId, kind: 'runs', name, query: 'group=1' });
    const again = await refusal(people.owner.views.create({ projectId, kind: 'runs', name, query: 'sort=name' }));
    expect(again.status).toBe(409);
    expect(again.message).toMatch(/^invalid input — name: .*"mine-/);
    const other = await people.member.views.create({ projectId, kind: 'runs', name: `${name}-2`, query: '' });
    const onto = await refusal(people.member.views.rename({ id: other.id, name }));
    expect(onto.status).toBe(409);
    expect(onto.message).toContain('name:');
    // the other kind may use the name
    await people.member.views.create({ projectId, kind: 'compare', name, query: `project=${projectId}` });
  });

  it('lets viewers open views but not save them; API keys read but do not save; only the creator or an owner changes one', async () => {
    const denied = await refusal(people.viewer.views.create({ projectId, kind: 'runs', name: 'nope', query: '' }));
    expect(denied).toEqual({ status: 403, message: 'your role in this team is viewer; this needs member or owner' });
    const byKey = await refusal(key.views.create({ projectId, kind: 'runs', name: 'by key', query: '' }));
    expect(byKey.status).toBe(403);
    expect(byKey.message).toMatch(/signed-in members, not API keys/);

    const v = await people.member.views.create({ projectId, kind: 'runs', name: `shared-${uniq()}`, query: 'q=x' });
    expect((await key.views.get({ id: v.id })).id).toBe(v.id);
    for (const c of [people.member2, people.viewer, key]) {
      expect((await refusal(c.views.rename({ id: v.id, name: 'taken over' }))).status).toBe(403);
      expect((await refusal(c.views.delete({ id: v.id }))).status).toBe(403);
    }
    expect((await refusal(people.member2.views.delete({ id: v.id }))).message).toMatch(
      /only they or a team owner may change it/,
    );
    expect((await people.owner.views.rename({ id: v.id, name: `${v.name}-owned` })).name).toBe(`${v.name}-owned`);
    expect((await people.owner.views.get({ id: v.id })).name).toBe(`${v.name}-owned`);
  });

  it("answers another team's view and project as missing (404), on get, open, rename, delete and list", async () => {
    const v = await people.member.views.create({ projectId, kind: 'runs', name: `private-${uniq()}`, query: 'q=a' });
    const theirs = await people.stranger.views.create({
      projectId: strangerProjectId,
      kind: 'runs',
      name: 'theirs',
      query: '',
    });
    // each call made when awaited: a promise made early rejects unheard while an earlier one is awaited
    for (const [who, call] of [
      ['get', () => people.stranger.views.get({ id: v.id })],
      ['rename', () => people.stranger.views.rename({ id: v.id, name: 'mine now' })],
      ['delete', () => people.stranger.views.delete({ id: v.id })],
      ['get back', () => people.owner.views.get({ id: theirs.id })],
    ] as const) {
      const r = await refusal(call());
      expect(r.status, who).toBe(404);
      expect(r.message, who).toMatch(/^view v[0-9a-f]+ not found$/);
    }
    expect((await refusal(people.stranger.views.list({ projectId, kind: 'runs' }))).status).toBe(404);
    const into = await refusal(people.stranger.views.create({ projectId, kind: 'runs', name: 'x', query: '' }));
    expect(into).toEqual({ status: 404, message: `project ${projectId} not found` });
    expect((await people.owner.views.get({ id: v.id })).name).toBe(v.name);
  });

  it('refuses a query with a parameter its page does not read, or longer than 4 KB, with a 400 naming `query`', async () => {
    const save = (kind: 'runs' | 'compare', query: string) =>
      refusal(people.member.views.create({ projectId, kind, name: `bad-${uniq()}`, query }));
    const unknown = await save('runs', 'group=1&evil=1');
    expect(unknown.status).toBe(400);
    expect(unknown.message).toMatch(/^invalid input — query: "evil" is not a parameter of the runs page/);
    // a runs-table parameter is not a compare-page one, and a compare view says what it compares
    expect((await save('compare', `project=${projectId}&cols=a`)).message).toMatch(/query: "cols" is not/);
    expect((await save('compare', 'control=vft')).message).toMatch(/query: a compare view names what it compares/);
    // the cursor of a page is not part of a view
    expect((await save('runs', 'cursor=abc')).message).toMatch(/query: "cursor" is not/);

    const long = await save('runs', `f=${'a'.repeat(1500)}&q=${'b'.repeat(1500)}&tags=${'c'.repeat(1200)}`);
    expect(long.status).toBe(400);
    expect(long.message).toMatch(/^invalid input — query: longer than 4096 bytes/);
    // bytes once encoded: 700 characters of 6 bytes each (%C3%A9) are too long
    expect((await save('runs', `q=${encodeURIComponent('é'.repeat(700))}`)).message).toMatch(/query: longer than/);
    expect((await save('runs', `q=${'x'.repeat(2001)}`)).message).toMatch(/query: the value of "q" is longer/);
    const huge = await save('runs', 'q='.padEnd(100_000, 'z'));
    expect(huge.status).toBe(400);
    expect(huge.message).toMatch(/query: longer than/);

    // just under the bound is kept, byte for byte
    const fits = `f=${'a'.repeat(2000)}&q=${'b'.repeat(2000)}&tags=${'c'.repeat(85)}`;
    expect(fits.length).toBe(4096);
    const ok = await people.member.views.create({ projectId, kind: 'runs', name: `fits-${uniq()}`, query: fits });
    expect(ok.query).toBe(fits);
  });

  it('refuses a bad name or kind with a 400 naming the field', async () => {
    const empty = await refusal(people.member.views.create({ projectId, kind: 'runs', name: '   ', query: '' }));
    expect(empty).toMatchObject({ status: 400, message: expect.stringMatching(/^invalid input — name: /) });
    const long = await refusal(
      people.member.views.create({ projectId, kind: 'runs', name: 'n'.repeat(101), query: '' }),
    );
    expect(long.message).toMatch(/name: a view name is at most 100 characters/);
    const kind = await refusal(
      people.member.views.create({ projectId, kind: 'table' as 'runs', name: 'k', query: '' }),
    );
    expect(kind).toMatchObject({ status: 400, message: expect.stringMatching(/kind:/) });
  });
});
