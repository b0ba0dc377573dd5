/**
 * Sign-in under attack (issue 14, §4 and §8): failed sign-ins are throttled per account and per client address,
 * in Postgres so every web server shares the counts; the address is the socket's, whatever X-Forwarded-For says;
 * common passwords are refused; sign-up does not tell whether an email has an account.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { CLIENT_IP_HEADER, createAuth, parseTrustedProxies, stampClientIp, type Auth } from '../src';
import { serveFetch } from '../src/testing';

let t: TestDatabase;
let auth: Auth;
const ORIGIN = 'http://127.0.0.1:3999';
const SECRET = 'abuse-secret-abuse-secret-abuse-secret-1';
const uniq = () => Math.random().toString(36).slice(2, 9);

beforeAll(async () => {
  t = await createTestDatabase();
  auth = createAuth({ db: t.db, secret: SECRET, baseURL: ORIGIN });
});
afterAll(async () => {
  await t?.drop();
});

/** The header the socket's server (apps/web/server.mjs) puts on a request from `ip`. */
function fromAddress(ip: string): Record<string, string> {
  const req = { headers: {} as Record<string, string | string[] | undefined>, socket: { remoteAddress: ip } };
  stampClientIp(req, parseTrustedProxies(''));
  return { [CLIENT_IP_HEADER]: req.headers[CLIENT_IP_HEADER] as string };
}

async function post(a: Auth, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await a.handler(
    new Request(`${ORIGIN}/api/auth/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: ORIGIN, ...headers },
      body: JSON.stringify(body),
    }),
  );
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    cookies: res.headers.getSetCookie(),
    json: (await res.json().catch(() => null)) as Record<string, unknown> | null,
  };
}

async function signUp(email: string, password = 'a perfectly fine password') {
  expect((await post(auth, 'sign-up/email', { email, password, name: 'Someone' })).status).toBe(200);
}

describe('sign-in throttling', () => {
  it('answers 429 with Retry-After before the 10th wrong password, however X-Forwarded-For rotates', async () => {
    const email = `victim-${uniq()}@lab.test`;
    await signUp(email);
    const statuses: number[] = [];
    let refused: Awaited<ReturnType<typeof post>> | null = null;
    for (let i = 0; i < 10; i++) {
      const r = await post(
        auth,
        'sign-in/email',
        { email, password: `guess number ${i}` },
        { ...fromAddress('203.0.113.7'), 'x-forwarded-for': `198.51.100.${i}`, 'x-real-ip': `198.51.100.${i}` },
      );
      statuses.push(r.status);
      refused ??= r.status === 429 ? r : null;
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5)).toEqual([429, 429, 429, 429, 429]);
    const retry = Number(refused!.retryAfter);
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(15 * 60);
    expect(refused!.json?.['message']).toMatch(
      /^too many failed sign-in attempts for this account: try again in \d+ s$/,
    );
    // refused before the password is checked: even the right one waits
    const right = await post(auth, 'sign-in/email', { email, password: 'a perfectly fine password' });
    expect(right.status).toBe(429);
  });

  it('counts per account whatever address the attempts come from', async () => {
    const email = `spread-${uniq()}@lab.test`;
    await signUp(email);
    const statuses = [];
    for (let i = 0; i < 7; i++) {
      const r = await post(auth, 'sign-in/email', { email, password: `guess ${i}` }, fromAddress(`192.0.2.${i + 1}`));
      statuses.push(r.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
    // an email with no account is counted the same way (the answers do not tell accounts apart)
    const ghost = `ghost-${uniq()}@lab.test`;
    const ghostStatuses = [];
    for (let i = 0; i < 6; i++)
      ghostStatuses.push((await post(auth, 'sign-in/email', { email: ghost, password: 'x' })).status);
    expect(ghostStatuses).toEqual([401, 401, 401, 401, 401, 429]);
  });

  it('counts per address whatever accounts it names, from the socket and not X-Forwarded-For (real HTTP)', async () => {
    const strict = createAuth({
      db: t.db,
      secret: SECRET,
      baseURL: ORIGIN,
      signInLimits: { perAddress: { max: 4, windowS: 600 } },
    });
    const server = await serveFetch(strict.handler);
    try {
      const statuses = [];
      let last: Response | null = null;
      for (let i = 0; i < 6; i++) {
        last = await fetch(`${server.url}/api/auth/sign-in/email`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            origin: ORIGIN,
            'x-forwarded-for': `198.51.100.${i}`,
            // a forged stamp: without this process's token it is no address at all
            [CLIENT_IP_HEADER]: `forged 198.51.100.${i}`,
          },
          body: JSON.stringify({ email: `sprayed-${i}-${uniq()}@lab.test`, password: 'Summer2026!!' }),
        });
        statuses.push(last.status);
      }
      expect(statuses).toEqual([401, 401, 401, 401, 429, 429]);
      expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await last!.json()) as { message: string }).message).toMatch(/from your address/);
    } finally {
      await server.close();
    }
    // the audit log has the socket's address, not the header's
    const failed = await t.db.prisma.auditEvent.findMany({
      where: { action: 'user.sign_in_failed', target: { startsWith: 'sprayed-' } },
    });
    expect(failed).toHaveLength(4);
    expect(new Set(failed.map((e) => e.ip))).toEqual(new Set(['127.0.0.1']));
  });

  it('is shared by every web server: two auth instances over one database count together', async () => {
    const other = createAuth({ db: t.db, secret: SECRET, baseURL: ORIGIN });
    const email = `shared-${uniq()}@lab.test`;
    await signUp(email);
    const statuses = [];
    for (let i = 0; i < 6; i++) {
      statuses.push((await post(i % 2 ? other : auth, 'sign-in/email', { email, password: `nope ${i}` })).status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
  });

  it('lets at most the limit through when the guesses arrive all at once', async () => {
    const email = `burst-${uniq()}@lab.test`;
    await signUp(email);
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        post(auth, 'sign-in/email', { email, password: `burst ${i}` }, fromAddress('198.18.0.1')).then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(15);
  });

  it("starts an account's count over when its owner signs in", async () => {
    const email = `owner-${uniq()}@lab.test`;
    await signUp(email);
    for (let i = 0; i < 4; i++)
      expect((await post(auth, 'sign-in/email', { email, password: `typo ${i}` })).status).toBe(401);
    const ok = await post(auth, 'sign-in/email', { email, password: 'a perfectly fine password' });
    expect(ok.status).toBe(200);
    expect(ok.json?.['user']).toMatchObject({ email });
    for (let i = 0; i < 5; i++)
      expect((await post(auth, 'sign-in/email', { email, password: `typo ${i}` })).status).toBe(401);
  });

  it('records the session and its audit entry with the stamped address', async () => {
    const email = `where-${uniq()}@lab.test`;
    await signUp(email);
    const ok = await post(
      auth,
      'sign-in/email',
      { email, password: 'a perfectly fine password' },
      { ...fromAddress('::ffff:192.0.2.55'), 'x-forwarded-for': '6.6.6.6', 'x-aft-auth-ip': '6.6.6.6' },
    );
    expect(ok.status).toBe(200);
    const user = await t.db.prisma.user.findUniqueOrThrow({ where: { email } });
    const session = await t.db.prisma.session.findFirstOrThrow({ where: { userId: user.id } });
    expect(session.ipAddress).toBe('192.0.2.55');
    const signIn = await t.db.prisma.auditEvent.findFirstOrThrow({
      where: { userId: user.id, action: 'user.sign_in' },
    });
    expect(signIn.ip).toBe('192.0.2.55');
  });
});

describe('password policy', () => {
  it.each(['1234567890', 'qwertyuiop', 'PASSWORD123', 'aaaaaaaaaaaa', 'abababababab'])(
    'refuses %j at sign-up with a 400 that names the password',
    async (password) => {
      const email = `weak-${uniq()}@lab.test`;
      const r = await post(auth, 'sign-up/email', { email, password, name: 'Weak' });
      expect(r.status).toBe(400);
      expect(r.json?.['message']).toMatch(/^password (is one of the most common passwords|repeats)/);
      expect(await t.db.prisma.user.count({ where: { email } })).toBe(0);
    },
  );

  it('refuses a short password with a message that names it, and takes a good one', async () => {
    const short = await post(auth, 'sign-up/email', { email: `s-${uniq()}@lab.test`, password: 'xk29!q', name: 'S' });
    expect(short.status).toBe(400);
    expect(String(short.json?.['message'])).toMatch(/password/i);
    const good = await post(auth, 'sign-up/email', {
      email: `g-${uniq()}@lab.test`,
      password: 'plum kettle 93 orbit',
      name: 'G',
    });
    expect(good.status).toBe(200);
  });
});

describe('sign-up', () => {
  it('does not tell whether an email has an account: same status, same body shape, no session either way', async () => {
    const taken = `taken-${uniq()}@lab.test`;
    await signUp(taken);
    const again = await post(auth, 'sign-up/email', { email: taken, password: 'an attacker password', name: 'X' });
    const fresh = await post(auth, 'sign-up/email', {
      email: `fresh-${uniq()}@lab.test`,
      password: 'an attacker password',
      name: 'X',
    });
    expect(again.status).toBe(200);
    expect(fresh.status).toBe(200);
    const shape = (v: unknown): unknown =>
      v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)])) : typeof v;
    expect(shape(again.json)).toEqual(shape(fresh.json));
    expect(again.json).toMatchObject({ token: null, user: { email: taken, emailVerified: false } });
    expect(again.cookies).toEqual([]);
    expect(fresh.cookies).toEqual([]);
  });
});
