/** Fixtures for API tests: a team with an API key and a handler over a test database. Entered as `@aft/api/testing`. */
import { generateApiKey, RunNotifier, type Db } from '@aft/db';
import { createApiHandler } from './http';

export async function createTeamWithKey(db: Db, slug: string, scopes: string[] = ['log', 'launch', 'read']) {
  const team = await db.prisma.team.upsert({ where: { slug }, create: { slug, name: slug }, update: {} });
  const k = generateApiKey();
  await db.prisma.apiKey.create({ data: { teamId: team.id, name: 'test', prefix: k.prefix, hash: k.hash, scopes } });
  return { team, key: k.key };
}

export function createTestHandler(db: Db, connectionString: string, localTeam: string | null = null) {
  const notifier = new RunNotifier(connectionString);
  const handler = createApiHandler({ db, notifier, localTeam });
  const call = async (path: string, input: unknown, init: { key?: string | null; method?: 'GET' | 'POST'; body?: string } = {}) => {
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
    const json = (await res.json()) as { result?: { data: unknown }; error?: { message: string; data: { code: string } } };
    return { status: res.status, json };
  };
  return { handler, notifier, call };
}
