import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countPoints, createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createMember, createTeamWithKey, createTestHandler } from '../src/testing';
import { appRouter, createCallerFactory, createContextInner } from '../src';

let t: TestDatabase;
let api: ReturnType<typeof createTestHandler>;
let key: string;
let otherKey: string;

beforeAll(async () => {
  t = await createTestDatabase();
  api = createTestHandler(t.db, t.url);
  key = (await createTeamWithKey(t.db, 'alpha')).key;
  otherKey = (await createTeamWithKey(t.db, 'beta')).key;
});
afterAll(async () => {
  await api?.notifier.close();
  await t?.drop();
});

const points = (n: number, key = 'loss', from = 0) =>
  Array.from({ length: n }, (_, i) => ({ key, step: from + i, value: Math.exp(-(from + i) / 100) }));
const stored = async (runId: string) => (await countPoints(t.db, runId)).n;

async function newRun(k = key, extra: Record<string, unknown> = {}) {
  const r = await api.call('runs.create', { project: 'p1', config: { lr: 0.001 }, ...extra }, { key: k });
  expect(r.status).toBe(200);
  return (r.json.result!.data as { id: string }).id;
}

describe('metrics over HTTP', () => {
  it('stores a batch sent twice once', async () => {
    const runId = await newRun();
    const batch = { runId, points: points(2000) };
    const a = await api.call('metrics.log', batch, { key });
    const b = await api.call('metrics.log', batch, { key });
    expect(a.json.result?.data).toMatchObject({ inserted: 2000, skipped: 0 });
    expect(b.json.result?.data).toMatchObject({ inserted: 0, skipped: 2000 });
    expect(await stored(runId)).toBe(2000);
  });

  it('returns NaN and ±Infinity as they were logged', async () => {
    const runId = await newRun();
    await api.call(
      'metrics.log',
      {
        runId,
        points: [
          { key: 'loss', step: 0, value: 1 },
          { key: 'loss', step: 1, value: 'NaN' },
          { key: 'loss', step: 2, value: 'Infinity' },
        ],
      },
      { key },
    );
    const r = await api.call('metrics.series', { runIds: [runId], keys: ['loss'] }, { key, method: 'GET' });
    expect(r.status).toBe(200);
    expect(r.json.result?.data).toMatchObject([{ mode: 'raw', steps: [0, 1, 2], values: [1, 'NaN', 'Infinity'] }]);
  });

  it('rejects a batch over the limit with a 400 that says so, storing nothing', async () => {
    const runId = await newRun();
    const r = await api.call('metrics.log', { runId, points: points(10_001) }, { key });
    expect(r.status).toBe(400);
    expect(r.json.error?.message).toMatch(/at most 10000 points/);
    expect(await stored(runId)).toBe(0);
  });

  it('rejects a malformed point anywhere in the batch, naming it, storing nothing', async () => {
    const runId = await newRun();
    const bad = points(100);
    (bad[57] as { step: unknown }).step = 1.5;
    (bad[58] as { value: unknown }).value = 'lots';
    const r = await api.call('metrics.log', { runId, points: bad }, { key });
    expect(r.status).toBe(400);
    expect(r.json.error?.message).toMatch(/points\.57\.step: step must be an integer/);
    expect(r.json.error?.message).toMatch(/points\.58\.value/);
    expect(await stored(runId)).toBe(0);
  });

  it('rejects a body that is not JSON', async () => {
    const runId = await newRun();
    const r = await api.call('metrics.log', null, { key, body: `{"runId":"${runId}","points":[` });
    expect(r.status).toBe(400);
    expect(r.json.error?.message).toBeTruthy();
    expect(await stored(runId)).toBe(0);
  });

  it('takes the columnar form too, and rejects ragged or mis-indexed columns', async () => {
    const runId = await newRun();
    const ok = await api.call(
      'metrics.log',
      { runId, columns: { keys: ['a', 'b'], key: [0, 1, 0], step: [0, 0, 1], value: [1, 'NaN', 3] } },
      { key },
    );
    expect(ok.json.result?.data).toMatchObject({ inserted: 3 });
    const ragged = await api.call(
      'metrics.log',
      { runId, columns: { keys: ['a'], key: [0, 0], step: [5], value: [1, 2] } },
      { key },
    );
    expect(ragged.status).toBe(400);
    expect(ragged.json.error?.message).toMatch(/columns\.step: step has 1 entries but key has 2/);
    const badIdx = await api.call(
      'metrics.log',
      { runId, columns: { keys: ['a'], key: [3], step: [5], value: [1] } },
      { key },
    );
    expect(badIdx.status).toBe(400);
    expect(badIdx.json.error?.message).toMatch(/key index 3 is not an index into keys/);
    const both = await api.call('metrics.log', { runId }, { key });
    expect(both.status).toBe(400);
    expect(both.json.error?.message).toMatch(/in one form: `points` \(objects\), `columns` or `packed`/);
    expect(await stored(runId)).toBe(3);
  });

  it('answers an unknown run with 404 naming it', async () => {
    const r = await api.call('metrics.log', { runId: 'nope123', points: points(3) }, { key });
    expect(r.status).toBe(404);
    expect(r.json.error?.message).toBe('run nope123 not found');
  });

  it('hides another team’s run behind 404 and writes nothing', async () => {
    const runId = await newRun();
    const r = await api.call('metrics.log', { runId, points: points(3) }, { key: otherKey });
    expect(r.status).toBe(404);
    expect(await stored(runId)).toBe(0);
    const g = await api.call('runs.get', { id: runId }, { key: otherKey, method: 'GET' });
    expect(g.status).toBe(404);
  });

  it('refuses a wrong API key and a missing one with 401', async () => {
    const runId = await newRun();
    const wrong = await api.call('metrics.log', { runId, points: points(3) }, { key: 'aft_nope_nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.json.error?.message).toMatch(/API key not recognised/);
    const none = await api.call('metrics.log', { runId, points: points(3) }, { key: null });
    expect(none.status).toBe(401);
    expect(none.json.error?.message).toMatch(/no API key: sign in, or send a key/);
    expect(await stored(runId)).toBe(0);
  });

  it('refuses a revoked key on its next request', async () => {
    const { key: k } = await createTeamWithKey(t.db, 'gamma');
    const runId = await newRun(k);
    await t.db.prisma.apiKey.updateMany({ where: { team: { slug: 'gamma' } }, data: { revokedAt: new Date() } });
    const r = await api.call('metrics.log', { runId, points: points(3) }, { key: k });
    expect(r.status).toBe(401);
  });

  it('rejects a body over the size limit with 413', async () => {
    const { handler } = api;
    const res = await handler(
      new Request('http://test/api/trpc/metrics.log', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(64 * 1024 * 1024), 'x-api-key': key },
        body: '{}',
      }),
    );
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/limit/);
  });
});

describe('runs', () => {
  it('creates the first runs of a new project at once: every one succeeds, in one project', async () => {
    // Prisma's upsert on (team, name) read then inserted: racing first runs got a unique violation, a 500
    for (let round = 0; round < 3; round++) {
      const name = `racing-${round}-${Date.now()}`;
      const rs = await Promise.all(
        Array.from({ length: 8 }, () => api.call('runs.create', { project: name, config: {} }, { key })),
      );
      expect(rs.map((r) => r.status)).toEqual(Array(8).fill(200));
      expect(await t.db.prisma.project.count({ where: { name } })).toBe(1);
    }
  });

  it('lists with filters, summary sort and cursor pagination', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const id = await newRun(key, {
        project: 'listing',
        method: i % 2 ? 'aft' : 'vft',
        tags: i < 3 ? ['seed', 'x'] : ['seed'],
        config: { lr: i / 10, model: { d: i < 4 ? 64 : 128 } },
      });
      ids.push(id);
      if (i !== 5) await api.call('runs.setSummary', { id, summary: { acc: i === 2 ? 0.9 : i / 100 } }, { key });
    }
    const page = async (input: Record<string, unknown>) => {
      const r = await api.call('runs.list', input, { key, method: 'GET' });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      return r.json.result!.data as { items: { id: string; summary: { acc?: number } }[]; nextCursor: string | null };
    };
    const project = (await t.db.prisma.project.findFirstOrThrow({ where: { name: 'listing' } })).id;

    // sort by a summary metric, runs without it last, across pages of 2
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const p = await page({ projectId: project, sortBy: 'summary.acc', sortDir: 'desc', limit: 2, cursor });
      seen.push(...p.items.map((r) => r.id));
      cursor = p.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual([ids[2], ids[6], ids[4], ids[3], ids[1], ids[0], ids[5]]);

    expect((await page({ projectId: project, method: ['aft'] })).items).toHaveLength(3);
    expect((await page({ projectId: project, tags: ['x'] })).items.map((r) => r.id).sort()).toEqual(
      ids.slice(0, 3).sort(),
    );
    const cfg = await page({ projectId: project, config: [{ path: 'model.d', op: 'eq', value: 128 }] });
    expect(cfg.items.map((r) => r.id).sort()).toEqual(ids.slice(4).sort());
    const gt = await page({ projectId: project, config: [{ path: 'lr', op: 'gte', value: 0.5 }] });
    expect(gt.items).toHaveLength(2);
    const sm = await page({ projectId: project, summary: [{ path: 'acc', op: 'gt', value: 0.05 }] });
    expect(sm.items.map((r) => r.id).sort()).toEqual([ids[2], ids[6]].sort());

    const bad = await api.call('runs.list', { sortBy: 'summary.acc;drop table run' }, { key, method: 'GET' });
    expect(bad.status).toBe(400);
    expect(bad.json.error?.message).toMatch(/sortBy/);
    const badCursor = await api.call('runs.list', { cursor: 'garbage' }, { key, method: 'GET' });
    expect(badCursor.status).toBe(400);
    expect(badCursor.json.error?.message).toMatch(/cursor/);
  });

  it('updates tags and notes, and sets status with timestamps', async () => {
    const id = await newRun();
    const u = await api.call('runs.update', { id, tags: ['a', 'b', 'a'], notes: 'looks good' }, { key });
    expect(u.json.result?.data).toMatchObject({ tags: ['a', 'b'], notes: 'looks good' });
    const s = await api.call('runs.setStatus', { id, status: 'failed', error: 'loss is NaN' }, { key });
    expect(s.status).toBe(200);
    const run = await t.db.prisma.run.findUniqueOrThrow({ where: { id } });
    expect(run.status).toBe('failed');
    expect(run.error).toBe('loss is NaN');
    expect(run.finishedAt).not.toBeNull();
    const bad = await api.call('runs.setStatus', { id, status: 'exploded' }, { key });
    expect(bad.status).toBe(400);
    expect(bad.json.error?.message).toMatch(/status/);
  });
});

describe('runs.onUpdate', () => {
  it('back-fills the current state, streams writes, and resumes after lastEventId', async () => {
    const runId = await newRun();
    const { user } = await createMember(t.db, 'alpha', 'viewer');
    const ctx = createContextInner({ db: t.db, notifier: api.notifier, apiKey: null, userId: user.id });
    const caller = (signal: AbortSignal) => createCallerFactory(appRouter)(ctx, { signal });
    const ac = new AbortController();
    const it = (await caller(ac.signal).runs.onUpdate({ runId }))[Symbol.asyncIterator]();
    // a tracked() envelope is [id, data, symbol] when called in-process
    const first = (await it.next()).value as unknown as [string, { status: string }];
    const firstSeq = Number(first[0]);
    expect(first[1].status).toBe('running');

    const next = it.next();
    await api.call('metrics.log', { runId, points: points(10) }, { key });
    const [secondId, second] = (await next).value as unknown as [string, { metrics: { key: string; count: number }[] }];
    expect(Number(secondId)).toBeGreaterThan(firstSeq);
    expect(second.metrics).toMatchObject([{ key: 'loss', count: 10 }]);
    ac.abort();
    await it.return?.();

    // a client that reconnects with the last id it saw gets nothing stale, then the next write
    const ac2 = new AbortController();
    const it2 = (await caller(ac2.signal).runs.onUpdate({ runId, lastEventId: secondId }))[Symbol.asyncIterator]();
    const pending = it2.next();
    await api.call('metrics.log', { runId, points: points(5, 'loss', 10) }, { key });
    const [thirdId, third] = (await pending).value as unknown as [string, { metrics: { count: number }[] }];
    expect(Number(thirdId)).toBe(Number(secondId) + 1);
    expect(third.metrics[0]!.count).toBe(15);
    ac2.abort();
    await it2.return?.();
  });
});

describe('samples, artifacts, events', () => {
  it('round-trip and stay idempotent', async () => {
    const runId = await newRun();
    const rows = [0, 1, 2].map((i) => ({
      step: 10,
      questionId: 'q1',
      sampleIdx: i,
      prompt: 'What is 2+3?',
      completion: `2+3=${4 + i}\n#### ${4 + i}`,
      extractedAnswer: String(4 + i),
      gold: '5',
      correct: i === 1,
      score: i === 2 ? 'NaN' : -0.5 * i,
      rank: i === 1 ? 0 : 1,
    }));
    await api.call('samples.log', { runId, rows }, { key });
    const again = await api.call('samples.log', { runId, rows }, { key });
    expect(again.json.result?.data).toMatchObject({ inserted: 0, skipped: 3 });
    const list = await api.call('samples.list', { runId, questionId: 'q1' }, { key, method: 'GET' });
    const items = (list.json.result!.data as { items: { correct: boolean; score: unknown }[] }).items;
    expect(items.map((s) => s.correct)).toEqual([false, true, false]);
    expect(items[2]!.score).toBe('NaN');

    const art = { runId, kind: 'checkpoint', name: 'step-10', uri: 'file:///tmp/ckpt-10', bytes: 1234, step: 10 };
    await api.call('artifacts.register', art, { key });
    await api.call('artifacts.register', { ...art, bytes: 2000 }, { key });
    const arts = await api.call('artifacts.list', { runId }, { key, method: 'GET' });
    expect(arts.json.result?.data).toMatchObject([{ kind: 'checkpoint', bytes: 2000, step: 10 }]);
    const badKind = await api.call('artifacts.register', { ...art, kind: 'weights' }, { key });
    expect(badKind.status).toBe(400);
    expect(badKind.json.error?.message).toMatch(/kind/);

    await api.call('events.log', { runId, kind: 'degradation-detected', step: 40, details: { ppl: 5.2 } }, { key });
    const ev = await api.call('events.list', { runId }, { key, method: 'GET' });
    expect(ev.json.result?.data).toMatchObject([{ kind: 'degradation-detected', step: 40, details: { ppl: 5.2 } }]);
  });
});
