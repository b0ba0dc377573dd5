/**
 * Authorization, table-driven over the whole router: every procedure declares the API-key scope it needs; a key
 * without that scope is refused (403) before the input is even read, and a key of another team cannot see that
 * a resource exists (404). A procedure added without a scope fails the first test.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRPCError } from '@trpc/server';
import { createTestDatabase, seedRun, type TestDatabase } from '@aft/db/testing';
import { RunNotifier } from '@aft/db';
import { createRedis, JobProducer, testQueueName } from '@aft/queue';
import { appRouter, createCallerFactory, createContextInner } from '../src';
import { createTeamWithKey } from '../src/testing';

const SCOPES = ['read', 'log', 'launch'] as const;
type Proc = { _def: { meta?: { scope?: string }; type: string; procedure?: boolean } };
/** The router's procedures by dotted path (walking nested routers). */
function flatten(rec: Record<string, unknown>, prefix = ''): [string, Proc][] {
  return Object.entries(rec).flatMap(([k, v]) => {
    const path = prefix ? `${prefix}.${k}` : k;
    const def = (v as Proc)?._def;
    if (def && typeof def.type === 'string' && ['query', 'mutation', 'subscription'].includes(def.type)) return [[path, v as Proc]];
    const nested = (v as { _def?: { record?: Record<string, unknown> } })?._def?.record ?? (v as Record<string, unknown>);
    return v && typeof v === 'object' ? flatten(nested, path) : [];
  });
}
const procedures = flatten(appRouter._def.record as unknown as Record<string, unknown>);

let t: TestDatabase;
let notifier: RunNotifier;
let producer: JobProducer;
const keys: Record<string, string> = {};
let otherKey: string;

beforeAll(async () => {
  t = await createTestDatabase();
  notifier = new RunNotifier(t.url);
  producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), testQueueName());
  for (const s of SCOPES) keys[s] = (await createTeamWithKey(t.db, 'owners', [s])).key;
  otherKey = (await createTeamWithKey(t.db, 'strangers')).key;
});
afterAll(async () => {
  await producer?.runs.obliterate({ force: true });
  await producer?.close();
  await notifier?.close();
  await t?.drop();
});

function caller(apiKey: string) {
  return createCallerFactory(appRouter)(createContextInner({ db: t.db, notifier, apiKey, localTeam: null, jobs: producer }));
}

/** Calls a procedure by path; resolves to the TRPCError code it failed with, or 'OK'. */
async function outcome(apiKey: string, path: string, input: unknown): Promise<string> {
  const fn = path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], caller(apiKey)) as (i: unknown) => unknown;
  try {
    const r = await fn(input);
    if (r && typeof (r as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
      const it = (r as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      await Promise.race([it.next(), new Promise((res) => setTimeout(res, 500))]);
      await it.return?.();
    }
    return 'OK';
  } catch (e) {
    if (e instanceof TRPCError) return `${e.code}: ${e.message}`;
    throw e;
  }
}

describe('every procedure', () => {
  it('declares the scope it needs', () => {
    expect(procedures.length).toBeGreaterThan(20);
    const missing = procedures.filter(([, p]) => !SCOPES.includes(p._def.meta?.scope as never)).map(([path]) => path);
    expect(missing, 'procedures without an authorization decision').toEqual([]);
  });

  it.each(procedures.map(([path, p]) => [path, p._def.meta?.scope ?? '?']))('%s is refused to keys without the `%s` scope', async (path, scope) => {
    for (const s of SCOPES) {
      const res = await outcome(keys[s]!, path, {});
      if (s === scope) expect(res, `${path} with a ${s} key`).not.toMatch(/^FORBIDDEN/);
      else expect(res, `${path} with a ${s} key`).toBe(`FORBIDDEN: this API key lacks the \`${scope}\` scope`);
    }
  });
});

describe('another team', () => {
  it('cannot tell whether a run, its data or a sweep exists', async () => {
    const { project, run } = await seedRun(t.db, { team: 'victims', project: 'secret' });
    const runId = run.id;
    const sweep = await t.db.prisma.sweep.create({ data: { name: 's', projectId: project.id } });
    const cases: [string, unknown][] = [
      ['runs.get', { id: runId }],
      ['runs.update', { id: runId, notes: 'x' }],
      ['runs.setStatus', { id: runId, status: 'failed' }],
      ['runs.cancel', { id: runId }],
      ['metrics.series', { runIds: [runId], keys: ['loss'] }],
      ['metrics.keys', { runIds: [runId] }],
      ['samples.list', { runId }],
      ['samples.splits', { runId }],
      ['artifacts.list', { runId }],
      ['events.list', { runId }],
      ['sweeps.get', { id: sweep.id }],
      ['sweeps.cancel', { id: sweep.id }],
    ];
    for (const [path, input] of cases) {
      expect(await outcome(otherKey, path, input), path).toMatch(/^NOT_FOUND/);
      const missing = await outcome(otherKey, path, JSON.parse(JSON.stringify(input).replaceAll(runId, 'nope').replaceAll(sweep.id, 'nope')));
      // the same answer as for an id that does not exist at all
      expect(missing.replace(/nope/g, 'ID'), path).toBe((await outcome(otherKey, path, input)).replaceAll(runId, 'ID').replaceAll(sweep.id, 'ID'));
    }
  });
});
