/**
 * The worker end to end: real Postgres (a database for this file), real Redis (a queue with a random name), the
 * API served over HTTP, and worker processes started (and killed) by the test. Models are the `tiny` preset cut
 * down to seconds per run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createQueuedRuns, createTestDatabase, storedPoints, type TestDatabase } from '@aft/db/testing';
import { createTeamWithKey, createTestHandler, serveFetch } from '@aft/api/testing';
import { createRedis, dropTestQueues, JobProducer, type SweepSpecInput, testQueueName } from '@aft/queue';

const ROOT = resolve(import.meta.dirname, '../../..');
// these tests train models in worker processes: give each room beyond the suite's default on a busy machine
vi.setConfig({ testTimeout: 300_000 });
const VFT_OVERRIDES = {
  batchSize: 8,
  evalEvery: 20,
  evalQuestions: 8,
  checkpointEvery: 10,
  'data.train': 1000,
  'data.val': 16,
  'data.test': 16,
  'eval.maxNewTokens': 32,
};
const ALIGN_OVERRIDES = {
  evalEvery: 4,
  evalQuestions: 8,
  checkpointEvery: 4,
  'eval.assessQuestions': 4,
  'eval.k': 2,
  'eval.maxNewTokens': 32,
  'spec.groupsPerStep': 4,
};
const vftConfig = (steps: number, seed = 3) => ({
  preset: 'tiny' as const,
  seed,
  steps,
  overrides: VFT_OVERRIDES,
  sampling: [],
});

let t: TestDatabase;
let api: ReturnType<typeof createTestHandler>;
let server: Awaited<ReturnType<typeof serveFetch>>;
let producer: JobProducer;
let key: string;
let queue: string;
let artifacts: string;
const workers: { proc: ChildProcess; log: string[] }[] = [];

function startWorker(): { proc: ChildProcess; log: string[] } {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'apps/worker/src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      REDIS_URL: 'redis://127.0.0.1:6379',
      AFT_URL: server.url,
      AFT_QUEUE: queue,
      AFT_CONCURRENCY: '1',
      AFT_ARTIFACT_DIR: artifacts,
      // short enough that a killed worker's job is taken back within seconds, long enough that a worker starved of
      // CPU on a busy CI machine still renews its lock (a lapsed lock counts as a stall; three of them fail the job)
      AFT_LOCK_MS: '10000',
      AFT_STALLED_MS: '1000',
      AFT_BACKEND: 'wasm',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const w = { proc, log: [] as string[] };
  proc.stdout!.on('data', (d: Buffer) => w.log.push(...d.toString().split('\n').filter(Boolean)));
  proc.stderr!.on('data', (d: Buffer) => w.log.push(...d.toString().split('\n').filter(Boolean)));
  workers.push(w);
  return w;
}

async function stopWorker(w: { proc: ChildProcess }) {
  if (w.proc.exitCode !== null || w.proc.signalCode !== null) return;
  const exited = new Promise((r) => w.proc.once('exit', r));
  w.proc.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
  if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
}

async function call<T>(path: string, input: unknown, method: 'GET' | 'POST' = 'POST', as = key): Promise<T> {
  const r = await api.call(path, input, { key: as, method });
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.json.error?.message}`);
  return r.json.result!.data as T;
}

async function until<T>(
  what: string,
  f: () => Promise<T | null | undefined | false>,
  timeoutMs = 120_000,
  everyMs = 300,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}\n${workers.map((w) => w.log.slice(-15).join('\n')).join('\n---\n')}`,
      );
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

interface RunRow {
  id: string;
  status: string;
  error: string | null;
  summary: Record<string, unknown>;
}
const getRun = (id: string) => call<RunRow>('runs.get', { id }, 'GET');
const finished = (s: string) => ['succeeded', 'failed', 'canceled'].includes(s);

/** Every point of a run, as `key@step → value` (wall time left out), from the store (chunks and tail). */
async function pointsOf(runId: string): Promise<Map<string, number>> {
  return new Map((await storedPoints(t.db, { runId })).map((p) => [`${p.key}@${p.step}`, p.value]));
}

beforeAll(async () => {
  t = await createTestDatabase();
  queue = testQueueName();
  producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), queue);
  api = createTestHandler(t.db, t.url, null, producer);
  server = await serveFetch(api.handler);
  key = (await createTeamWithKey(t.db, 'workers')).key;
  artifacts = await mkdtemp(join(tmpdir(), 'aft-artifacts-'));
});

afterAll(async () => {
  await Promise.all(workers.map(stopWorker));
  await dropTestQueues(producer);
  await server?.close();
  await api?.notifier.close();
  await t?.drop();
  if (artifacts) await rm(artifacts, { recursive: true, force: true });
});

describe('sweeps', () => {
  it('trains a 6-run sweep from one shared VFT parent on two workers that both take jobs', async () => {
    startWorker();
    startWorker();
    const spec: SweepSpecInput = {
      name: 'methods × constraints',
      project: 'worker-test',
      base: {
        preset: 'tiny',
        seed: 3,
        steps: 8,
        k: 4,
        questions: 12,
        vftSteps: 30,
        vftOverrides: VFT_OVERRIDES,
        alignOverrides: ALIGN_OVERRIDES,
      },
      axes: { method: ['aft', 'dpo', 'pro'], constraint: ['none', 'boundary'] },
      maxConcurrent: 2,
    };
    const launched = await call<{ sweepId: string; parents: number; runs: number }>('sweeps.launch', spec);
    expect(launched).toMatchObject({ parents: 1, runs: 6 });

    type SweepView = {
      status: string;
      runs: (RunRow & { method: string; constraint: string; parentRunId: string | null })[];
    };
    const sweep = await until(
      'the sweep to finish',
      async () => {
        const s = await call<SweepView>('sweeps.get', { id: launched.sweepId }, 'GET');
        return s.runs.every((r) => finished(r.status)) ? s : null;
      },
      240_000,
      1000,
    );
    expect(sweep.runs.map((r) => [r.method, r.constraint, r.status, r.error])).toEqual(
      sweep.runs.map((r) => [r.method, r.constraint, 'succeeded', null]),
    );
    expect(sweep.status).toBe('succeeded');
    const parents = sweep.runs.filter((r) => r.method === 'vft');
    expect(parents).toHaveLength(1);
    const children = sweep.runs.filter((r) => r.method !== 'vft');
    expect(children).toHaveLength(6);
    expect(new Set(children.map((r) => r.parentRunId))).toEqual(new Set([parents[0]!.id]));

    for (const r of sweep.runs) {
      const points = await pointsOf(r.id);
      expect(points.size, `metrics of ${r.id}`).toBeGreaterThan(0);
      const samples = await t.db.pool.query('SELECT count(*)::int AS n FROM sample WHERE run_id = $1', [r.id]);
      expect(samples.rows[0].n, `samples of ${r.id}`).toBeGreaterThan(0);
      const ckpt = await t.db.pool.query(`SELECT uri FROM artifact WHERE run_id = $1 AND kind = 'checkpoint'`, [r.id]);
      expect(ckpt.rows.length, `checkpoint of ${r.id}`).toBe(1);
    }
    // every run's test evaluation logged each question's greedy outcome, on the same questions: runs pair up
    const outcomes = await t.db.pool.query<{ run_id: string; ids: string[]; right: number }>(
      `SELECT run_id, array_agg(question_id ORDER BY question_id) AS ids, count(*) FILTER (WHERE correct)::int AS right
       FROM sample WHERE run_id = ANY($1::text[]) AND split = 'test/greedy' GROUP BY run_id`,
      [sweep.runs.map((r) => r.id)],
    );
    expect(outcomes.rows).toHaveLength(sweep.runs.length);
    const ids = outcomes.rows[0]!.ids;
    expect(ids.length).toBeGreaterThan(0);
    for (const o of outcomes.rows) expect(o.ids, `test questions of ${o.run_id}`).toEqual(ids);
    // the logged outcomes agree with the run's own test accuracy
    for (const r of sweep.runs) {
      const o = outcomes.rows.find((x) => x.run_id === r.id)!;
      const acc = (r.summary as Record<string, number>)['test/task_accuracy'];
      expect(o.right / o.ids.length, `test accuracy of ${r.id}`).toBeCloseTo(acc!, 10);
    }
    // every child scored the parent's one fixed candidate set: the same pairs, so assessment pairs across methods,
    // and the pairs it ordered are its fixed assessment accuracy
    const pairs = await t.db.pool.query<{ run_id: string; ids: string[]; ordered: number }>(
      `SELECT run_id, array_agg(question_id ORDER BY question_id) AS ids, count(*) FILTER (WHERE correct)::int AS ordered
       FROM sample WHERE run_id = ANY($1::text[]) AND split = 'test/assess' GROUP BY run_id`,
      [children.map((r) => r.id)],
    );
    expect(pairs.rows).toHaveLength(children.length);
    for (const p of pairs.rows) {
      expect(p.ids, `candidate pairs of ${p.run_id}`).toEqual(pairs.rows[0]!.ids);
      expect(p.ids[0]).toMatch(/^[0-9a-f]{12}:[\w-]+#\d+>\d+$/);
      const summary = children.find((c) => c.id === p.run_id)!.summary as Record<string, number>;
      expect(p.ordered / p.ids.length, `fixed assessment of ${p.run_id}`).toBeCloseTo(
        summary['test/fixed_assessment_accuracy']!,
        10,
      );
    }
    // a boundary no negative reached in any step is reported as inactive; one that was reached is not
    for (const r of children.filter((c) => c.constraint === 'boundary')) {
      const below = [...(await pointsOf(r.id))].filter(([k]) => k.startsWith('train/boundary/belowFraction@'));
      expect(below.length, `bound activity of ${r.id}`).toBe(8);
      const inactive = await t.db.pool.query(`SELECT 1 FROM event WHERE run_id = $1 AND kind = 'constraint-inactive'`, [
        r.id,
      ]);
      expect(inactive.rows.length, `constraint-inactive event of ${r.id}`).toBe(
        below.every(([, v]) => v === 0) ? 1 : 0,
      );
    }
    // the parent trained once: one point per step of its loss, and one labelled sample set
    const parentPoints = await pointsOf(parents[0]!.id);
    expect([...parentPoints.keys()].filter((k) => k.startsWith('train/loss@'))).toHaveLength(30);
    const sets = await t.db.pool.query(`SELECT name FROM artifact WHERE run_id = $1 AND kind = 'sample-set'`, [
      parents[0]!.id,
    ]);
    expect(sets.rows.map((r) => r.name)).toEqual(['samples-k4-t0.8-q12']);
    const started = workers.flatMap((w, i) =>
      w.log.filter((l) => l.includes(`job ${parents[0]!.id} started`)).map(() => i),
    );
    expect(started).toHaveLength(1);
    // both workers took jobs
    const took = workers.map((w) => w.log.filter((l) => / job \S+ started/.test(l)).length);
    expect(
      took.every((n) => n > 0),
      `jobs per worker: ${took.join(', ')}`,
    ).toBe(true);
  });
});

describe('teams', () => {
  it("trains two teams' sweeps to success on one worker that holds no team key", async () => {
    await Promise.all(workers.map(stopWorker));
    const w = startWorker();
    const other = (await createTeamWithKey(t.db, `other-${Math.random().toString(36).slice(2, 8)}`)).key;
    const spec = (project: string): SweepSpecInput => ({
      name: 'two teams',
      project,
      base: {
        preset: 'tiny',
        seed: 3,
        steps: 4,
        k: 4,
        questions: 12,
        vftSteps: 30,
        vftOverrides: VFT_OVERRIDES,
        alignOverrides: ALIGN_OVERRIDES,
      },
      axes: { method: ['aft'] },
      maxConcurrent: 1,
    });
    const launched = [
      { key, sweep: await call<{ sweepId: string }>('sweeps.launch', spec('team-a')) },
      { key: other, sweep: await call<{ sweepId: string }>('sweeps.launch', spec('team-b'), 'POST', other) },
    ];
    type SweepView = { status: string; runs: RunRow[] };
    for (const l of launched) {
      const s = await until(
        'both sweeps to finish',
        async () => {
          const v = await call<SweepView>('sweeps.get', { id: l.sweep.sweepId }, 'GET', l.key);
          return v.runs.every((r) => finished(r.status)) ? v : null;
        },
        240_000,
        1000,
      );
      expect(s.runs.map((r) => [r.status, r.error])).toEqual([
        ['succeeded', null],
        ['succeeded', null],
      ]);
      // the one worker took every job of both teams, and each run's metrics reached it
      for (const r of s.runs) {
        expect(w.log.some((line) => line.includes(`job ${r.id} started`))).toBe(true);
        expect((await pointsOf(r.id)).size).toBeGreaterThan(0);
      }
    }
    expect(await t.db.pool.query('SELECT count(*)::int AS n FROM run_token').then((r) => r.rows[0].n)).toBe(0);
  });
});

describe('degradation during a sweep', () => {
  it('stops a collapsing run under the stop policy and flags one under the flag policy, with onset and evidence', async () => {
    if (!workers.some((w) => w.proc.exitCode === null)) startWorker();
    const base = {
      preset: 'tiny' as const,
      seed: 5,
      k: 4,
      questions: 12,
      vftSteps: 30,
      vftOverrides: VFT_OVERRIDES,
      alignOverrides: ALIGN_OVERRIDES,
    };
    const collapse = { method: 'aft' as const, constraint: 'none' as const, wNll: 0, lr: 0.02, steps: 16 };
    const launched = await call<{ sweepId: string }>('sweeps.launch', {
      name: 'collapse',
      project: 'worker-test',
      base: { ...base, ...collapse },
      onDegradation: 'stop',
    });
    type SweepView = { runs: (RunRow & { method: string; degradedAt: number | null; parentRunId: string | null })[] };
    const s = await until(
      'the sweep to finish',
      async () => {
        const v = await call<SweepView>('sweeps.get', { id: launched.sweepId }, 'GET');
        return v.runs.every((r) => finished(r.status)) ? v : null;
      },
      180_000,
      500,
    );
    const stopped = s.runs.find((r) => r.method === 'aft')!;
    expect(stopped.status).toBe('failed');
    expect(stopped.error).toMatch(/degraded at step \d+ \(.+\); stopped by the sweep's policy/);
    const ev = await t.db.pool.query<{ step: number; details: { evidence: unknown[]; policy: string } }>(
      `SELECT step, details FROM event WHERE run_id = $1 AND kind = 'degradation-detected'`,
      [stopped.id],
    );
    expect(ev.rows).toHaveLength(1);
    expect(ev.rows[0]!.details.evidence.length).toBeGreaterThan(0);
    expect(ev.rows[0]!.details.policy).toBe('stop');
    expect(stopped.degradedAt).toBe(ev.rows[0]!.step);
    const trained = [...(await pointsOf(stopped.id)).keys()].filter((k) => k.startsWith('train/loss@')).length;
    expect(trained).toBeLessThan(16);

    const parentRunId = stopped.parentRunId!;
    // a run whose every evaluation counts as degraded (perplexity ratio > 1e-6), checkpointing twice as often as it
    // evaluates: its onset is its first evaluation (step 4) and its last good checkpoint the one at step 2
    const flagCfg = {
      ...collapse,
      seed: 5,
      sampling: { k: 4, temperature: 0.8, questions: 12 },
      onDegradation: 'flag',
      overrides: { ...ALIGN_OVERRIDES, checkpointEvery: 2, 'degradation.pplRatio': 1e-6 },
    };
    const { runId } = await call<{ runId: string }>('runs.launch', {
      kind: 'align',
      project: 'worker-test',
      parentRunId,
      config: flagCfg,
    });
    const flagged = await until(
      'the flagged run to finish',
      async () => {
        const r = await getRun(runId);
        return finished(r.status) ? r : null;
      },
      120_000,
      300,
    );
    expect(flagged.status).toBe('succeeded');
    expect(flagged.summary['degraded']).toBe(true);
    const ev2 = await t.db.pool.query(`SELECT step FROM event WHERE run_id = $1 AND kind = 'degradation-detected'`, [
      runId,
    ]);
    expect(ev2.rows).toHaveLength(1);
    expect([...(await pointsOf(runId)).keys()].filter((k) => k.startsWith('train/loss@'))).toHaveLength(16);
    expect(ev2.rows[0].step).toBe(4);
    const good = await t.db.pool.query(`SELECT step FROM artifact WHERE run_id = $1 AND name = 'last-good'`, [runId]);
    expect(good.rows).toEqual([{ step: 2 }]);

    // fork from the last good checkpoint with a constraint: it starts there, from the same parent
    const fork = await call<{ runId: string }>('runs.launch', {
      kind: 'align',
      project: 'worker-test',
      parentRunId,
      forkOf: runId,
      config: { ...flagCfg, constraint: 'boundary', steps: 4, overrides: ALIGN_OVERRIDES },
    });
    const forked = await until(
      'the fork to finish',
      async () => {
        const r = await getRun(fork.runId);
        return finished(r.status) ? r : null;
      },
      120_000,
      300,
    );
    expect(forked.status).toBe('succeeded');
    const fev = await t.db.pool.query<{ details: { fromRun: string; fromStep: number } }>(
      `SELECT details FROM event WHERE run_id = $1 AND kind = 'forked'`,
      [fork.runId],
    );
    expect(fev.rows.map((r) => r.details)).toEqual([{ fromRun: runId, fromStep: 2 }]);
    // a run without a last good checkpoint cannot be forked
    const refused = await api.call(
      'runs.launch',
      { kind: 'align', project: 'worker-test', parentRunId, forkOf: fork.runId, config: flagCfg },
      { key },
    );
    expect(refused.status).toBe(412);
    expect(refused.json.error!.message).toMatch(/has no last good checkpoint/);
  });
});

describe('cancellation', () => {
  it('stops a running run within seconds and marks it canceled', async () => {
    if (!workers.some((w) => w.proc.exitCode === null)) startWorker();
    const { runId } = await call<{ runId: string }>('runs.launch', {
      kind: 'vft',
      project: 'worker-test',
      config: vftConfig(5000),
    });
    await until('the run to log steps', async () => (await pointsOf(runId)).size > 20);
    const t0 = Date.now();
    const res = await call<{ canceled: boolean }>('runs.cancel', { id: runId });
    expect(res.canceled).toBe(true);
    const job = await producer.runs.getJob(runId);
    await until(
      'the job to stop',
      async () => ['completed', 'failed'].includes((await job!.getState()) as string),
      30_000,
      100,
    );
    const stoppedAfter = Date.now() - t0;
    expect(stoppedAfter).toBeLessThan(10_000);
    const run = await getRun(runId);
    expect(run.status).toBe('canceled');
    const steps = [...(await pointsOf(runId)).keys()].filter((k) => k.startsWith('train/loss@')).length;
    expect(steps).toBeLessThan(5000);
    // and it stays stopped
    await new Promise((r) => setTimeout(r, 1500));
    expect([...(await pointsOf(runId)).keys()].filter((k) => k.startsWith('train/loss@')).length).toBe(steps);
  });

  it('cancels what has not finished when a sweep is canceled', async () => {
    if (!workers.some((w) => w.proc.exitCode === null)) startWorker();
    const launched = await call<{ sweepId: string }>('sweeps.launch', {
      name: 'to cancel',
      project: 'worker-test',
      base: {
        preset: 'tiny',
        seed: 4,
        steps: 8,
        k: 4,
        questions: 12,
        vftSteps: 4000,
        vftOverrides: VFT_OVERRIDES,
        alignOverrides: ALIGN_OVERRIDES,
      },
      axes: { method: ['aft', 'dpo'] },
    });
    type SweepView = { status: string; runs: (RunRow & { method: string })[] };
    const parent = await until('the parent to start', async () => {
      const s = await call<SweepView>('sweeps.get', { id: launched.sweepId }, 'GET');
      const p = s.runs.find((r) => r.method === 'vft' && r.status === 'running');
      return p && (await pointsOf(p.id)).size > 5 ? p : null;
    });
    const res = await call<{ canceled: number }>('sweeps.cancel', { id: launched.sweepId });
    expect(res.canceled).toBe(3);
    let last = '';
    const s = await until(
      'every run to stop',
      async () => {
        const v = await call<SweepView>('sweeps.get', { id: launched.sweepId }, 'GET');
        const job = await producer.runs.getJob(parent.id);
        const state = await job?.getState();
        last = `${v.runs.map((r) => `${r.method}:${r.status}`).join(', ')}; parent job ${state}`;
        // the release job has also run (it must leave the canceled runs alone)
        const release = await producer.control.getJob(`release-${parent.id}`);
        const released = (await release?.getState()) === 'completed';
        return v.runs.every((r) => r.status === 'canceled') && state !== 'active' && released ? v : null;
      },
      30_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nlast seen: ${last}`);
    });
    expect(s.status).toBe('canceled');
    // the alignment runs never trained
    for (const r of s.runs.filter((r) => r.method !== 'vft')) expect((await pointsOf(r.id)).size).toBe(0);
  });
});

describe('failures', () => {
  const failedRun = async (config: unknown) => {
    if (!workers.some((w) => w.proc.exitCode === null)) startWorker();
    const { runId } = await call<{ runId: string }>('runs.launch', { kind: 'vft', project: 'worker-test', config });
    const run = await until(
      'the run to fail',
      async () => {
        const r = await getRun(runId);
        return finished(r.status) ? r : null;
      },
      120_000,
      200,
    );
    const job = await producer.runs.getJob(runId);
    return { run, job: job!, state: await job!.getState() };
  };

  it('fails a run with a bad trainer config at once, without retrying, saying what was wrong', async () => {
    // launches refuse unknown keys and values out of bounds (libs/queue overrides.ts); this one passes them
    const { run, job, state } = await failedRun({ ...vftConfig(20), overrides: { 'model.nHead': 3 } });
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/bad VFT config: dModel \(64\) must be a multiple of nHead \(3\)/);
    expect(state).toBe('failed');
    expect(job.attemptsMade).toBe(1);
  });

  it('fails a run whose job payload or stored config it cannot read, instead of leaving it queued', async () => {
    if (!workers.some((w) => w.proc.exitCode === null)) startWorker();
    const team = await t.db.prisma.team.findFirstOrThrow({ where: { slug: 'workers' } });
    const row = (ref: string, config: Record<string, unknown>) => ({
      ref,
      name: `unreadable-${ref}`,
      method: 'vft',
      constraint: 'none',
      config,
      configHash: '',
      seed: 1,
      tags: [],
    });
    const { ids, tokens } = await createQueuedRuns(t.db.pool, team.id, 'worker-test', [
      row('payload', { preset: 'tiny', seed: 1, overrides: {}, sampling: [] }),
      row('config', { preset: 'huge', seed: 1 }),
    ]);
    // as another version of the platform might have written them: the producer's and the launch's checks bypassed
    const jobs = {
      payload: { kind: 'ppo', runId: ids.get('payload'), runToken: tokens.get('payload') },
      config: { kind: 'vft', runId: ids.get('config'), runToken: tokens.get('config') },
    };
    for (const data of Object.values(jobs)) await producer.runs.add('train', data, { jobId: data.runId, attempts: 3 });
    for (const [ref, error] of [
      ['payload', /bad job payload: kind/],
      ['config', /bad run config: preset/],
    ] as const) {
      const runId = ids.get(ref)!;
      const run = await until(`the ${ref} run to fail`, async () => {
        const r = await getRun(runId);
        return finished(r.status) ? r : null;
      });
      expect(run.status).toBe('failed');
      expect(run.error).toMatch(error);
      expect((await producer.runs.getJob(runId))!.attemptsMade).toBe(1);
    }
  });

  it('fails a run whose loss stops being finite at once, naming the step', async () => {
    const { run, job, state } = await failedRun({
      ...vftConfig(200),
      // within the launch bounds, and still diverging: AdamW's decay multiplies the weights by 1 − lr·wd = −9 a step
      overrides: {
        ...VFT_OVERRIDES,
        'optim.lr': 1,
        'optim.weightDecay': 10,
        'optim.clipNorm': 0,
        'optim.warmupSteps': 0,
      },
    });
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/non-finite loss/);
    expect(state).toBe('failed');
    expect(job.attemptsMade).toBe(1);
  });
});

describe('crash safety', () => {
  it('resumes a run from its checkpoint after kill -9 of its worker, ending exactly as an uninterrupted run', async () => {
    await Promise.all(workers.map(stopWorker));
    const first = startWorker();
    const steps = 60;
    const { runId } = await call<{ runId: string }>('runs.launch', {
      kind: 'vft',
      project: 'worker-test',
      name: 'crashed',
      config: vftConfig(steps, 11),
    });
    await until(
      'a checkpoint and more steps',
      async () => {
        const ck = await t.db.pool.query(`SELECT step FROM artifact WHERE run_id = $1 AND kind = 'checkpoint'`, [
          runId,
        ]);
        return (ck.rows[0]?.step ?? 0) >= 20 && [...(await pointsOf(runId)).keys()].some((k) => k === 'train/loss@25');
      },
      120_000,
      50,
    );
    first.proc.kill('SIGKILL');
    await new Promise((r) => first.proc.once('exit', r));
    expect((await getRun(runId)).status).toBe('running');
    startWorker();
    const crashed = await until(
      'the resumed run to finish',
      async () => {
        const r = await getRun(runId);
        return finished(r.status) ? r : null;
      },
      180_000,
      500,
    );
    expect(crashed.status, `${crashed.error ?? ''}\n${workers.at(-1)!.log.slice(-20).join('\n')}`).toBe('succeeded');
    expect(workers.at(-1)!.log.join('\n')).toContain(`job ${runId} started`);
    // the second worker resumed from the checkpoint rather than starting over
    const resumed = await t.db.pool.query<{ step: number }>(
      `SELECT step FROM event WHERE run_id = $1 AND kind = 'resumed'`,
      [runId],
    );
    expect(resumed.rows).toHaveLength(1);
    expect(resumed.rows[0]!.step).toBeGreaterThanOrEqual(20);

    const { runId: cleanId } = await call<{ runId: string }>('runs.launch', {
      kind: 'vft',
      project: 'worker-test',
      name: 'clean',
      config: vftConfig(steps, 11),
    });
    const clean = await until(
      'the uninterrupted run',
      async () => {
        const r = await getRun(cleanId);
        return finished(r.status) ? r : null;
      },
      180_000,
      500,
    );
    expect(clean.status).toBe('succeeded');

    // timings and the machine's own load (sys/*) differ from run to run; everything else must not
    const timing = (k: string) => k.includes('tokens_per_s') || k.startsWith('sys/');
    const a = await pointsOf(runId);
    const b = await pointsOf(cleanId);
    const keysA = [...a.keys()].filter((k) => !timing(k)).sort();
    const keysB = [...b.keys()].filter((k) => !timing(k)).sort();
    expect(keysA).toEqual(keysB); // nothing missing, nothing extra (a point is unique per key and step)
    expect(keysA.filter((k) => k.startsWith('train/loss@'))).toHaveLength(steps);
    for (const k of keysA) expect(a.get(k), k).toBe(b.get(k));
    const finals = (r: RunRow) => Object.fromEntries(Object.entries(r.summary).filter(([k]) => k.startsWith('test/')));
    expect(Object.keys(finals(crashed)).length).toBeGreaterThan(3);
    expect(finals(crashed)).toEqual(finals(clean));
  });

  it('on SIGTERM hands its job back without failing or canceling the run; the next worker resumes it', async () => {
    await Promise.all(workers.map(stopWorker));
    const w = startWorker();
    const { runId } = await call<{ runId: string }>('runs.launch', {
      kind: 'vft',
      project: 'worker-test',
      name: 'shutdown',
      config: vftConfig(80, 12),
    });
    await until(
      'some steps',
      async () => [...(await pointsOf(runId)).keys()].some((k) => k === 'train/loss@15'),
      120_000,
      50,
    );
    const t0 = Date.now();
    await stopWorker(w);
    expect(w.proc.exitCode).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const job = await producer.runs.getJob(runId);
    expect(['delayed', 'waiting']).toContain(await job!.getState());
    expect(job!.attemptsMade).toBe(0);
    expect((await getRun(runId)).status).toBe('running');
    startWorker();
    const done = await until(
      'the run to finish elsewhere',
      async () => {
        const r = await getRun(runId);
        return finished(r.status) ? r : null;
      },
      180_000,
      500,
    );
    expect(done.status).toBe('succeeded');
    const resumed = await t.db.pool.query<{ step: number }>(
      `SELECT step FROM event WHERE run_id = $1 AND kind = 'resumed'`,
      [runId],
    );
    expect(resumed.rows[0]?.step).toBeGreaterThanOrEqual(15);
    expect([...(await pointsOf(runId)).keys()].filter((k) => k.startsWith('train/loss@'))).toHaveLength(80);
  });
});
