/**
 * Bulk export over HTTP with the SDK, and re-import into an empty database: the same runs, points, samples,
 * events and artifacts come back, with the same values. Export is authorized like reading the project.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createReadStream } from 'node:fs';
import { createGunzip, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  importArchive,
  insertMetricPoints,
  insertSamples,
  readTar,
  RunNotifier,
  storedPoints,
  type TestDatabase,
} from '@aft/db/testing';
import { exportArchive } from '../src';
import { createExportHandler, createTeamWithKey, serveFetch } from '@aft/api/testing';

const RUNS = 100;
const POINTS = 1000;
let src: TestDatabase;
let dst: TestDatabase;
let notifier: RunNotifier;
let server: Awaited<ReturnType<typeof serveFetch>>;
let key: string;
let projectId: string;
let sweepId: string;
const dir = mkdtempSync(join(tmpdir(), 'aft-export-'));

beforeAll(async () => {
  src = await createTestDatabase();
  dst = await createTestDatabase();
  notifier = new RunNotifier(src.url);
  server = await serveFetch(createExportHandler({ db: src.db, notifier, auth: null }));
  const { team, key: k } = await createTeamWithKey(src.db, 'exporters', ['read']);
  key = k;
  const project = await src.db.prisma.project.create({ data: { teamId: team.id, name: 'gsm8k, "quoted"' } });
  projectId = project.id;
  const sweep = await src.db.prisma.sweep.create({
    data: { projectId, name: 'grid', spec: { axes: { method: ['aft'] } } },
  });
  sweepId = sweep.id;
  let parent: string | null = null;
  for (let r = 0; r < RUNS; r++) {
    const run: { id: string } = await src.db.prisma.run.create({
      data: {
        projectId,
        sweepId: r % 2 ? sweep.id : null,
        parentRunId: r > 0 ? parent : null,
        name: `run-${r}`,
        method: r === 0 ? 'vft' : 'aft',
        status: 'succeeded',
        config: { lr: 1e-4 * (r + 1) },
        summary: { 'test/task_accuracy': r / 100, note: r === 3 ? 'has, a comma' : 'x' },
        tags: ['export'],
      },
    });
    if (r === 0) parent = run.id;
    await insertMetricPoints(src.db.pool, run.id, {
      keys: ['train/loss', 'val/acc'],
      key: Array.from({ length: POINTS }, (_, i) => i % 2),
      step: Array.from({ length: POINTS }, (_, i) => Math.floor(i / 2)),
      value: Array.from({ length: POINTS }, (_, i) => (i === 7 ? NaN : Math.sin(r + i))),
      time: Array.from({ length: POINTS }, (_, i) => 1_700_000_000_000 + i * 1000),
    });
    await insertSamples(src.db.pool, run.id, team.id, [
      {
        step: 10,
        split: 'test',
        questionId: 'q1',
        sampleIdx: 0,
        prompt: 'What is 2+3?',
        completion: 'so 5\n#### 5',
        gold: '5',
        correct: true,
        score: -0.25,
      },
      {
        step: 10,
        split: 'test',
        questionId: 'q1',
        sampleIdx: 1,
        prompt: 'What is 2+3?',
        completion: '#### 6',
        gold: '5',
        correct: false,
        score: null,
      },
    ]);
    await src.db.prisma.event.create({
      data: { runId: run.id, kind: 'degradation-detected', step: 40, details: { ppl: 5.2 } },
    });
    await src.db.prisma.artifact.create({
      data: { runId: run.id, kind: 'checkpoint', name: 'step-40', uri: `file:///ckpt/${r}`, bytes: 1234, step: 40 },
    });
  }
}, 300_000);
afterAll(async () => {
  await server?.close();
  await notifier?.close();
  await src?.drop();
  await dst?.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function counts(t: TestDatabase, project: string) {
  const q = async (sql: string) => (await t.db.pool.query<{ n: number }>(sql, [project])).rows[0]!.n;
  return {
    runs: await q('SELECT count(*)::int AS n FROM run WHERE project_id = $1'),
    points: (await storedPoints(t.db, { projectId: project })).length,
    nans: (await storedPoints(t.db, { projectId: project })).filter((p) => Number.isNaN(p.value)).length,
    samples: await q('SELECT count(*)::int AS n FROM sample s JOIN run r ON r.id = s.run_id WHERE r.project_id = $1'),
    events: await q('SELECT count(*)::int AS n FROM event e JOIN run r ON r.id = e.run_id WHERE r.project_id = $1'),
    artifacts: await q(
      'SELECT count(*)::int AS n FROM artifact a JOIN run r ON r.id = a.run_id WHERE r.project_id = $1',
    ),
    children: await q('SELECT count(*)::int AS n FROM run WHERE project_id = $1 AND parent_run_id IS NOT NULL'),
    inSweep: await q('SELECT count(*)::int AS n FROM run WHERE project_id = $1 AND sweep_id IS NOT NULL'),
  };
}

describe('export and re-import', () => {
  it('round-trips a project of 100 runs into an empty database with the same counts and values', async () => {
    const file = join(dir, 'project.aft.tar.gz');
    const bytes = await exportArchive({ projectId }, file, { url: server.url, apiKey: key });
    expect(bytes).toBeGreaterThan(1000);

    const names: string[] = [];
    for await (const e of readTar([gunzipSync(readFileSync(file))])) names.push(e.name.replace('aft-export/', ''));
    expect(names).toEqual(
      expect.arrayContaining([
        'project.json',
        'sweeps.jsonl',
        'runs.jsonl',
        'runs.csv',
        'metrics/part-00001.jsonl',
        'samples/part-00001.jsonl',
        'events/part-00001.jsonl',
        'artifacts.jsonl',
        'manifest.json',
      ]),
    );
    let csv = '';
    for await (const e of readTar([gunzipSync(readFileSync(file))]))
      if (e.name.endsWith('runs.csv')) csv = e.content.toString();
    expect(csv.split('\n')[0]).toMatch(/^id,name,method,constraint,status,seed,.*,note,test\/task_accuracy$/);
    expect(csv).toContain('"has, a comma"');

    const team = await dst.db.prisma.team.create({ data: { slug: 'importers', name: 'importers' } });
    const imported = await importArchive(dst.db.pool, createReadStream(file).pipe(createGunzip()), { teamId: team.id });
    const before = await counts(src, projectId);
    const after = await counts(dst, imported.projectId);
    expect(before).toEqual({
      runs: RUNS,
      points: RUNS * POINTS,
      nans: RUNS,
      samples: 2 * RUNS,
      events: RUNS,
      artifacts: RUNS,
      children: RUNS - 1,
      inSweep: RUNS / 2,
    });
    expect(after).toEqual(before);
    expect(imported.counts).toEqual(imported.manifest);

    // the same values and times, for one run's series
    const series = async (t: TestDatabase, project: string) =>
      (await storedPoints(t.db, { projectId: project })).filter((p) => p.run === 'run-5');
    expect(await series(dst, imported.projectId)).toEqual(await series(src, projectId));
    const run = await dst.db.prisma.run.findFirstOrThrow({ where: { projectId: imported.projectId, name: 'run-3' } });
    expect(run.summary).toEqual({ 'test/task_accuracy': 0.03, note: 'has, a comma' });
    expect(run.status).toBe('succeeded');
  });

  it('exports one sweep with only its runs', async () => {
    const file = join(dir, 'sweep.aft.tar.gz');
    await exportArchive({ sweepId }, file, { url: server.url, apiKey: key });
    const team = await dst.db.prisma.team.create({ data: { slug: 'sweepers', name: 'sweepers' } });
    const r = await importArchive(dst.db.pool, createReadStream(file).pipe(createGunzip()), { teamId: team.id });
    expect(r.counts).toMatchObject({ runs: RUNS / 2, metrics: (RUNS / 2) * POINTS, sweeps: 1 });
  });

  it('is refused to other teams (404, as for a missing id), without a key (401), and for a bad query (400)', async () => {
    const other = (await createTeamWithKey(src.db, 'others')).key;
    const get = (q: string, k: string | null) =>
      fetch(`${server.url}/api/export?${q}`, { headers: k ? { 'x-api-key': k } : {} });
    const theirs = await get(`project=${projectId}`, other);
    const missing = await get('project=nope', other);
    expect(theirs.status).toBe(404);
    expect(((await theirs.json()) as { error: { message: string } }).error.message).toBe(
      `project ${projectId} not found`,
    );
    expect(missing.status).toBe(404);
    expect((await get(`project=${projectId}`, null)).status).toBe(401);
    const both = await get(`project=${projectId}&sweep=${sweepId}`, key);
    expect(both.status).toBe(400);
    expect(((await both.json()) as { error: { message: string } }).error.message).toMatch(
      /exactly one of \?project=<id> or \?sweep=<id>/,
    );
  });

  it('a broken archive imports nothing', async () => {
    const file = join(dir, 'project.aft.tar.gz');
    const whole = gunzipSync(readFileSync(file));
    const team = await dst.db.prisma.team.create({ data: { slug: 'broken', name: 'broken' } });
    await expect(
      importArchive(dst.db.pool, [whole.subarray(0, Math.floor(whole.length * 0.6))], { teamId: team.id }),
    ).rejects.toThrow(/archive ends inside/);
    expect(await dst.db.prisma.project.count({ where: { teamId: team.id } })).toBe(0);
  });
});
