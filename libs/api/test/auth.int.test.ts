/**
 * Accounts over HTTP, as the dashboard uses them: sign-up makes an account and a team of one's own (no session: the
 * form signs in next, so sign-up answers alike for a taken email); the password is stored as a scrypt hash;
 * sign-in with a wrong password is refused; the cookie authorizes tRPC calls; sign-out ends the session in
 * Postgres, after which the same cookie is refused. Invitations add members — only the person one names, if it
 * names one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createAuth, type Auth } from '../src';
import { createTestHandler } from '../src/testing';

let t: TestDatabase;
let auth: Auth;
let api: ReturnType<typeof createTestHandler>;
const ORIGIN = 'http://127.0.0.1:3999';

beforeAll(async () => {
  t = await createTestDatabase();
  auth = createAuth({ db: t.db, secret: 'test-secret-test-secret-test-secret-42', baseURL: ORIGIN });
  api = createTestHandler(t.db, t.url, auth);
});
afterAll(async () => {
  await api?.notifier.close();
  await t?.drop();
});

async function authPost(path: string, body: unknown, cookie?: string) {
  const res = await auth.handler(
    new Request(`${ORIGIN}/api/auth/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: ORIGIN, ...(cookie ? { cookie } : {}) },
      body: JSON.stringify(body),
    }),
  );
  const setCookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0]!)
    .join('; ');
  return {
    status: res.status,
    json: (await res.json().catch(() => null)) as Record<string, unknown> | null,
    cookie: setCookie,
  };
}

/** Signs up, then in (as the sign-in form does): the session cookie. */
async function signUpAndIn(email: string, password: string, name: string): Promise<string> {
  const up = await authPost('sign-up/email', { email, password, name });
  expect(up.status).toBe(200);
  const inn = await authPost('sign-in/email', { email, password });
  expect(inn.status).toBe(200);
  return inn.cookie;
}

async function trpcGet(path: string, cookie: string, input?: unknown) {
  const q = input === undefined ? '' : `?input=${encodeURIComponent(JSON.stringify(input))}`;
  const res = await api.handler(new Request(`${ORIGIN}/api/trpc/${path}${q}`, { headers: { cookie } }));
  return {
    status: res.status,
    json: (await res.json()) as { result?: { data: unknown }; error?: { message: string } },
  };
}
async function trpcPost(path: string, cookie: string, input: unknown) {
  const res = await api.handler(
    new Request(`${ORIGIN}/api/trpc/${path}`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' },
      body: JSON.stringify(input),
    }),
  );
  return {
    status: res.status,
    json: (await res.json()) as { result?: { data: unknown }; error?: { message: string } },
  };
}

describe('sign-up, sign-in, sign-out', () => {
  it('works end to end with sessions in Postgres and a hashed password', async () => {
    const email = 'ada@lab.test';
    const up = await authPost('sign-up/email', { email, password: 'correct horse battery', name: 'Ada' });
    expect(up.status).toBe(200);
    expect(up.cookie).not.toMatch(/session_token=/);
    const first = await authPost('sign-in/email', { email, password: 'correct horse battery' });
    expect(first.cookie).toMatch(/session_token=/);

    const user = await t.db.prisma.user.findUniqueOrThrow({ where: { email } });
    const account = await t.db.prisma.account.findFirstOrThrow({ where: { userId: user.id } });
    expect(account.password).not.toContain('correct horse');
    expect(account.password).toMatch(/^[0-9a-f]+:[0-9a-f]+$/); // salt:scrypt-key
    const memberships = await t.db.prisma.membership.findMany({ where: { userId: user.id }, include: { team: true } });
    expect(memberships).toHaveLength(1);
    expect(memberships[0]!.role).toBe('owner');
    expect(memberships[0]!.team.name).toBe("Ada's team");

    const me = await trpcGet('teams.me', first.cookie);
    expect(me.status).toBe(200);
    expect(me.json.result!.data).toMatchObject({ user: { email }, current: { role: 'owner' } });

    const wrong = await authPost('sign-in/email', { email, password: 'not the password' });
    expect(wrong.status).toBe(401);
    expect(String(wrong.json?.['message'])).toMatch(/invalid email or password/i);

    const sessionsBefore = await t.db.prisma.session.count({ where: { userId: user.id } });
    const inn = await authPost('sign-in/email', { email, password: 'correct horse battery' });
    expect(inn.status).toBe(200);
    expect(await t.db.prisma.session.count({ where: { userId: user.id } })).toBe(sessionsBefore + 1);
    expect((await trpcGet('projects.list', inn.cookie)).status).toBe(200);

    const out = await authPost('sign-out', {}, inn.cookie);
    expect(out.status).toBe(200);
    expect(await t.db.prisma.session.count({ where: { userId: user.id } })).toBe(sessionsBefore);
    const after = await trpcGet('projects.list', inn.cookie);
    expect(after.status).toBe(401);
    expect(after.json.error?.message).toMatch(/not signed in/);

    const actions = (await t.db.prisma.auditEvent.findMany({ where: { userId: user.id }, orderBy: { id: 'asc' } })).map(
      (a) => a.action,
    );
    expect(actions).toEqual(['user.sign_up', 'user.sign_in', 'user.sign_in_failed', 'user.sign_in']);
  });

  it('refuses bad sign-ups with a message', async () => {
    const short = await authPost('sign-up/email', { email: 'bob@lab.test', password: 'short', name: 'Bob' });
    expect(short.status).toBe(400);
    expect(String(short.json?.['message'])).toMatch(/password/i);
    const bad = await authPost('sign-up/email', {
      email: 'not-an-email',
      password: 'long enough password',
      name: 'Bob',
    });
    expect(bad.status).toBe(400);
    await authPost('sign-up/email', { email: 'carol@lab.test', password: 'long enough password', name: 'Carol' });
    const twice = await authPost('sign-up/email', {
      email: 'carol@lab.test',
      password: 'another long password',
      name: 'Carol',
    });
    expect(twice.status).toBe(200); // alike for a taken email: see "does not tell whether an email has an account"
    expect(await t.db.prisma.user.count({ where: { email: 'carol@lab.test' } })).toBe(1);
    // the account keeps its password
    const other = await authPost('sign-in/email', { email: 'carol@lab.test', password: 'another long password' });
    expect(other.status).toBe(401);
  });
});

describe('invitations', () => {
  it('add a member once, with the role the owner chose, and the team switch follows the cookie', async () => {
    const owner = { cookie: await signUpAndIn('owner@lab.test', 'owner password 1', 'Olive') };
    const guest = { cookie: await signUpAndIn('guest@lab.test', 'guest password 1', 'Gus') };
    const inv = await trpcPost('invitations.create', owner.cookie, { role: 'viewer', email: 'guest@lab.test' });
    expect(inv.status).toBe(200);
    const { token } = inv.json.result!.data as { token: string };
    const stored = await t.db.prisma.invitation.findFirstOrThrow({ where: { email: 'guest@lab.test' } });
    expect(stored.hash).not.toContain(token);

    const preview = await trpcGet('invitations.preview', guest.cookie, { token });
    expect(preview.json.result!.data).toMatchObject({ team: { name: "Olive's team" }, role: 'viewer', expired: false });
    const ok = await trpcPost('invitations.accept', guest.cookie, { token });
    expect(ok.status).toBe(200);
    const { team } = ok.json.result!.data as { team: string };
    const again = await trpcPost('invitations.accept', guest.cookie, { token });
    expect(again.status).toBe(404);
    expect(again.json.error?.message).toMatch(/not valid/);

    // in the owner's team (chosen by cookie) the guest is a viewer: reads pass, launches are refused
    const cookie = `${guest.cookie}; aft_team=${team}`;
    const me = await trpcGet('teams.me', cookie);
    expect(me.json.result!.data).toMatchObject({ current: { slug: team, role: 'viewer' } });
    expect((await trpcGet('teams.members', cookie)).json.result!.data).toHaveLength(2);
    const create = await trpcPost('projects.create', cookie, { name: 'nope' });
    expect(create.status).toBe(403);
    expect(create.json.error?.message).toBe('your role in this team is viewer; this needs member or owner');
    // without the cookie the guest works in their own team, as its owner
    expect((await trpcPost('projects.create', guest.cookie, { name: 'mine' })).status).toBe(200);
  });
});

describe('an invitation that names an email', () => {
  it('can be accepted only by the account with that email (any case); others get 403 and it stays usable', async () => {
    const s = Math.random().toString(36).slice(2, 8);
    const owner = await signUpAndIn(`own-${s}@lab.test`, 'owner password 2', 'Owen');
    const other = await signUpAndIn(`other-${s}@lab.test`, 'other password 2', 'Otto');
    const named = await signUpAndIn(`named-${s}@lab.test`, 'named password 2', 'Nina');
    const inv = await trpcPost('invitations.create', owner, { role: 'member', email: `Named-${s}@Lab.test` });
    const { token } = inv.json.result!.data as { token: string };

    const preview = await trpcGet('invitations.preview', other, { token });
    expect(preview.json.result!.data).toMatchObject({ email: `Named-${s}@Lab.test`, forYou: false });
    const refused = await trpcPost('invitations.accept', other, { token });
    expect(refused.status).toBe(403);
    expect(refused.json.error?.message).toBe(
      `this invitation is for Named-${s}@Lab.test, and you are signed in as other-${s}@lab.test: ` +
        'sign in with that address to accept it',
    );
    const otherUser = await t.db.prisma.user.findUniqueOrThrow({ where: { email: `other-${s}@lab.test` } });
    expect(await t.db.prisma.membership.count({ where: { userId: otherUser.id } })).toBe(1); // their own team only

    expect((await trpcGet('invitations.preview', named, { token })).json.result!.data).toMatchObject({ forYou: true });
    const ok = await trpcPost('invitations.accept', named, { token });
    expect(ok.status).toBe(200);
    expect(ok.json.result!.data).toMatchObject({ role: 'member' });
  });
});
