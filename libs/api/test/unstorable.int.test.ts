/**
 * Text Postgres cannot store — U+0000 in text, `\u0000` in jsonb strings and keys, lone UTF-16 surrogates — and
 * cursors that are not what the list returned are refused over HTTP with a 400 naming the field, never a 500.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createTeamWithKey, createTestHandler } from '../src/testing';

let t: TestDatabase;
let api: ReturnType<typeof createTestHandler>;
let key: string;
let runId: string;

beforeAll(async () => {
  t = await createTestDatabase();
  api = createTestHandler(t.db, t.url);
  key = (await createTeamWithKey(t.db, `nul-${randomBytes(4).toString('hex')}`)).key;
  const r = await api.call('runs.create', { project: 'text', name: 'ok' }, { key });
  expect(r.status).toBe(200);
  runId = (r.json.result!.data as { id: string }).id;
});
afterAll(async () => {
  await api?.notifier.close();
  await t?.drop();
});

const NUL = '\u0000';
const LONE = '\ud800';
const sample = (over: Record<string, unknown> = {}) => ({
  step: 1,
  questionId: 'q1',
  prompt: 'p',
  completion: 'c',
  ...over,
});

async function refused(path: string, input: unknown, field: RegExp, method: 'GET' | 'POST' = 'POST') {
  const r = await api.call(path, input, { key, method });
  expect(r.status, JSON.stringify(r.json)).toBe(400);
  expect(r.json.error!.message).toMatch(field);
  return r.json.error!.message;
}

describe('text Postgres cannot store', () => {
  it('a NUL in a sample is refused naming the row and field; nothing of the batch is stored', async () => {
    const msg = await refused(
      'samples.log',
      { runId, rows: [sample(), sample({ sampleIdx: 1, completion: `4${NUL}2` })] },
      /rows\.1\.completion: .*NUL/,
    );
    expect(msg).not.toMatch(/invalid byte sequence|0x00/);
    expect(await t.db.prisma.sample.count({ where: { runId } })).toBe(0);
  });

  it('a lone surrogate in a sample is refused; a well-formed pair (an emoji) is stored', async () => {
    await refused('samples.log', { runId, rows: [sample({ prompt: `a${LONE}b` })] }, /rows\.0\.prompt: .*surrogate/);
    const ok = await api.call('samples.log', { runId, rows: [sample({ prompt: 'solve 😀' })] }, { key });
    expect(ok.status).toBe(200);
  });

  it('a NUL in a run name is refused, on create and on update', async () => {
    await refused('runs.create', { project: 'text', name: `a${NUL}b` }, /name: .*NUL/);
    await refused('runs.update', { id: runId, name: `a${NUL}b` }, /name: .*NUL/);
    await refused('runs.create', { project: `p${NUL}` }, /project: .*NUL/);
  });

  it("a NUL in an event's details (value or key, at any depth) is refused naming the path", async () => {
    await refused('events.log', { runId, kind: 'note', details: { a: { b: [`x${NUL}`] } } }, /details\.a\.b\.0: .*NUL/);
    await refused(
      'events.log',
      { runId, kind: 'note', details: { a: { [`k${NUL}`]: 1 } } },
      /details\.a\.k.*: a key .*NUL/,
    );
    await refused('events.log', { runId, kind: 'note', details: { s: `x${LONE}` } }, /details\.s: .*surrogate/);
    const ok = await api.call('events.log', { runId, kind: 'note', details: { a: { b: ['fine'] } } }, { key });
    expect(ok.status).toBe(200);
  });

  it('JSON nested without end is refused, not a stack overflow', async () => {
    // written by hand: JSON.stringify itself cannot nest this deep
    const nested = (n: number) =>
      `{"runId":"${runId}","kind":"note","details":{"deep":${'['.repeat(n)}1${']'.repeat(n)}}}`;
    // deeper than any request: refused by its shape before it is parsed (libs/api/src/http.ts)
    const r = await api.call('events.log', null, { key, body: nested(100_000) });
    expect(r.status, JSON.stringify(r.json).slice(0, 500)).toBe(413);
    expect(r.json.error!.message).toMatch(/request body nests deeper than 256 levels/);
    // parsed, then refused by the schema, naming where
    const v = await api.call('events.log', null, { key, body: nested(100) });
    expect(v.status, JSON.stringify(v.json).slice(0, 500)).toBe(400);
    expect(v.json.error!.message).toMatch(/details\.deep\.0\.0.*: must not nest deeper than/);
  });

  it('a NUL in a summary key or value is refused naming it', async () => {
    await refused('runs.setSummary', { id: runId, summary: { [`acc${NUL}`]: 1 } }, /summary\.acc.*: a key .*NUL/);
    await refused('runs.setSummary', { id: runId, summary: { note: `x${NUL}` } }, /summary\.note: .*NUL/);
    await refused('runs.create', { project: 'text', config: { [`lr${NUL}`]: 1 } }, /config\.lr.*: a key .*NUL/);
  });

  it('a NUL in a read filter or an id is refused too', async () => {
    await refused('runs.list', { search: `a${NUL}` }, /search: .*NUL/, 'GET');
    await refused('runs.get', { id: `r${NUL}` }, /id: .*NUL/, 'GET');
    await refused('samples.list', { runId, questionId: `q${NUL}` }, /questionId: .*NUL/, 'GET');
  });
});

describe('runs.list cursor', () => {
  const cursor = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  it('a cursor whose time is not a date is a 400, not a 500', async () => {
    for (const bad of [
      ['not a date', runId],
      ['2024-02-30T00:00:00.000Z', runId],
      [12, runId],
      ['2024-01-01', `x${NUL}`],
    ]) {
      await refused('runs.list', { cursor: cursor(bad) }, /cursor/, 'GET');
    }
  });

  it('a summary-sorted cursor with the wrong types is a 400', async () => {
    for (const bad of [
      ['yes', 1, runId],
      [false, 'x', runId],
      [false, 1, 2],
    ]) {
      await refused('runs.list', { sortBy: 'summary.acc', cursor: cursor(bad) }, /cursor/, 'GET');
    }
  });

  it('the cursors the list returns still page', async () => {
    for (let i = 0; i < 3; i++) await api.call('runs.create', { project: 'text', name: `page-${i}` }, { key });
    for (const sortBy of ['createdAt', 'name', 'summary.acc']) {
      const first = await api.call('runs.list', { sortBy, limit: 2 }, { key, method: 'GET' });
      const next = (first.json.result!.data as { nextCursor: string }).nextCursor;
      expect(next).toBeTruthy();
      const second = await api.call('runs.list', { sortBy, limit: 2, cursor: next }, { key, method: 'GET' });
      expect(second.status).toBe(200);
      expect((second.json.result!.data as { items: unknown[] }).items.length).toBeGreaterThan(0);
    }
  });
});
