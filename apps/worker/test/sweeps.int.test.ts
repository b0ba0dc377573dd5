/**
 * Sweeps end to end: real Postgres (a database for this file), real Redis (a queue with a random name), the API
 * served over HTTP, and worker processes started by the test (stack.ts). A sweep trains its shared VFT parent once
 * and its runs on two workers; one worker with no team key trains two teams' sweeps.
 */
import { describe, expect, it, vi } from 'vitest';
import type { SweepSpecInput } from '@aft/queue';
import { ALIGN_OVERRIDES, useStack, VFT_OVERRIDES, type RunView } from './stack';

// these tests train models in worker processes: give each room beyond the suite's default on a busy machine
vi.setConfig({ testTimeout: 300_000 });

const stack = useStack('workers', { everyMs: 300 });
const startWorker = () => stack.startWorker({ AFT_BACKEND: 'wasm' });

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
    const launched = await stack.call<{ sweepId: string; parents: number; runs: number }>('sweeps.launch', spec);
    expect(launched).toMatchObject({ parents: 1, runs: 6 });

    type SweepView = {
      status: string;
      runs: (RunView & { method: string; constraint: string; parentRunId: string | null })[];
    };
    const sweep = await stack.untilSweepFinished<SweepView>('the sweep to finish', launched.sweepId, 240_000, 1000);
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
      const points = await stack.pointsOf(r.id);
      expect(points.size, `metrics of ${r.id}`).toBeGreaterThan(0);
      const samples = await stack.t.db.pool.query('SELECT count(*)::int AS n FROM sample WHERE run_id = $1', [r.id]);
      expect(samples.rows[0].n, `samples of ${r.id}`).toBeGreaterThan(0);
      const ckpt = await stack.t.db.pool.query(`SELECT uri FROM artifact WHERE run_id = $1 AND kind = 'checkpoint'`, [
        r.id,
      ]);
      expect(ckpt.rows.length, `checkpoint of ${r.id}`).toBe(1);
    }
    // every run's test evaluation logged each question's greedy outcome, on the same questions: runs pair up
    const outcomes = await stack.t.db.pool.query<{ run_id: string; ids: string[]; right: number }>(
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
    const pairs = await stack.t.db.pool.query<{ run_id: string; ids: string[]; ordered: number }>(
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
      const below = [...(await stack.pointsOf(r.id))].filter(([k]) => k.startsWith('train/boundary/belowFraction@'));
      expect(below.length, `bound activity of ${r.id}`).toBe(8);
      const inactive = await stack.t.db.pool.query(
        `SELECT 1 FROM event WHERE run_id = $1 AND kind = 'constraint-inactive'`,
        [r.id],
      );
      expect(inactive.rows.length, `constraint-inactive event of ${r.id}`).toBe(
        below.every(([, v]) => v === 0) ? 1 : 0,
      );
    }
    // the parent trained once: one point per step of its loss, and one labelled sample set
    const parentPoints = await stack.pointsOf(parents[0]!.id);
    expect([...parentPoints.keys()].filter((k) => k.startsWith('train/loss@'))).toHaveLength(30);
    const sets = await stack.t.db.pool.query(`SELECT name FROM artifact WHERE run_id = $1 AND kind = 'sample-set'`, [
      parents[0]!.id,
    ]);
    expect(sets.rows.map((r) => r.name)).toEqual(['samples-k4-t0.8-q12']);
    const started = stack.workers.flatMap((w, i) =>
      w.log.filter((l) => l.includes(`job ${parents[0]!.id} started`)).map(() => i),
    );
    expect(started).toHaveLength(1);
    // both workers took jobs
    const took = stack.workers.map((w) => w.log.filter((l) => / job \S+ started/.test(l)).length);
    expect(
      took.every((n) => n > 0),
      `jobs per worker: ${took.join(', ')}`,
    ).toBe(true);
  });
});

describe('teams', () => {
  it("trains two teams' sweeps to success on one worker that holds no team key", async () => {
    await Promise.all(stack.workers.map(stack.stopWorker));
    const w = startWorker();
    const other = await stack.addTeam(`other-${Math.random().toString(36).slice(2, 8)}`);
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
      { key: stack.key, sweep: await stack.call<{ sweepId: string }>('sweeps.launch', spec('team-a')) },
      { key: other, sweep: await stack.call<{ sweepId: string }>('sweeps.launch', spec('team-b'), 'POST', other) },
    ];
    type SweepView = { status: string; runs: RunView[] };
    for (const l of launched) {
      const s = await stack.untilSweepFinished<SweepView>(
        'both sweeps to finish',
        l.sweep.sweepId,
        240_000,
        1000,
        l.key,
      );
      expect(s.runs.map((r) => [r.status, r.error])).toEqual([
        ['succeeded', null],
        ['succeeded', null],
      ]);
      // the one worker took every job of both teams, and each run's metrics reached it
      for (const r of s.runs) {
        expect(w.log.some((line) => line.includes(`job ${r.id} started`))).toBe(true);
        expect((await stack.pointsOf(r.id)).size).toBeGreaterThan(0);
      }
    }
    expect(await stack.t.db.pool.query('SELECT count(*)::int AS n FROM run_token').then((r) => r.rows[0].n)).toBe(0);
  });
});
