/** Fixtures for API tests: a team with an API key and a handler over a test database. Entered as `@aft/api/testing`. */
import { addMember, createApiKey, createUser, ensureTeam, RunNotifier, type ApiKeyScope, type Db } from '@aft/db';
import type { JobProducer } from '@aft/queue';
import { createApiHandler, type ApiHandlerOptions } from './http';
import type { Auth } from './auth';
import { parseTrustedProxies, stampClientIp } from './client-ip';
import type { RateLimiter } from './rate-limit';
import type { Role } from './trpc';

export { RedisRateLimiter } from './rate-limit';
/** A Redis connection as the API's rate limiter and job producer use one (for fixtures outside the server tier). */
export { createRedis } from '@aft/queue';

export async function createTeamWithKey(db: Db, slug: string, scopes: string[] = ['log', 'launch', 'read']) {
  const team = await ensureTeam(db, slug);
  const { key } = await createApiKey(db.pool, { teamId: team.id, name: 'test', scopes: scopes as ApiKeyScope[] });
  return { team, key };
}

/**
 * A user who is a member of team `slug` (created if missing) with `role`, written straight to the tables — no
 * password, so no sign-in: tests act as them through `createContextInner({ userId })`. Sign-in itself is tested
 * through the auth handler.
 */
export async function createMember(
  db: Db,
  slug: string,
  role: Role,
  email = `${role}-${Math.random().toString(36).slice(2, 9)}@${slug}.test`,
) {
  const team = await ensureTeam(db, slug);
  const user = await createUser(db, { email, name: email.split('@')[0]! });
  await addMember(db, team.id, user.id, role);
  return { team, user };
}

export function createTestHandler(
  db: Db,
  connectionString: string,
  auth: Auth | null = null,
  jobs: JobProducer | null = null,
  rateLimiter: RateLimiter | null = null,
  more: Partial<Pick<ApiHandlerOptions, 'streams' | 'maxActiveRuns' | 'maxBodyBytes'>> = {},
) {
  const notifier = new RunNotifier(connectionString);
  const handler = createApiHandler({ db, notifier, auth, jobs, rateLimiter, ...more });
  const call = async (
    path: string,
    input: unknown,
    init: { key?: string | null; method?: 'GET' | 'POST'; body?: string } = {},
  ) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (init.key) headers['x-api-key'] = init.key;
    const method = init.method ?? 'POST';
    const url =
      method === 'GET'
        ? `http://test/api/trpc/${path}?input=${encodeURIComponent(JSON.stringify(input))}`
        : `http://test/api/trpc/${path}`;
    const body = method === 'POST' ? (init.body ?? JSON.stringify(input)) : undefined;
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    const res = await handler(new Request(url, { method, headers, body }));
    const json = (await res.json()) as {
      result?: { data: unknown };
      error?: { message: string; data: { code: string } };
    };
    return { status: res.status, json };
  };
  return { handler, notifier, call };
}

/** Serves a fetch handler over node:http on 127.0.0.1 (port 0 = any free one). For SDK tests. */
export async function serveFetch(handler: (req: Request) => Promise<Response>, port = 0) {
  const { createServer } = await import('node:http');
  const noProxies = parseTrustedProxies('');
  const server = createServer(async (req, res) => {
    // as apps/web/server.mjs does: the handler learns the client's address from the socket, not from its headers
    stampClientIp(req, noProxies);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? Buffer.concat(chunks) : undefined;
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
    const response = await handler(
      new Request(`http://127.0.0.1${req.url}`, {
        method: req.method,
        headers,
        body: req.method === 'GET' ? undefined : body,
      }),
    );
    res.writeHead(response.status, Object.fromEntries(response.headers.entries()));
    res.end(Buffer.from(await response.arrayBuffer()));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${addr.port}`,
    port: addr.port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
export { createExportHandler } from './export';
