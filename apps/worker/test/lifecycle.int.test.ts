/**
 * How a run ends other than by finishing, end to end with real Postgres, Redis, the API over HTTP and worker
 * processes (stack.ts): stopped or flagged for degradation (and forked from its last good checkpoint), canceled
 * alone or with its sweep, failed at once for a bad config, an unreadable job or a diverging loss.
 */
import { describe, expect, it, vi } from 'vitest';
import { createQueuedRuns } from '@aft/db/testing';
import { ALIGN_OVERRIDES, useStack, VFT_OVERRIDES, vftConfig, type RunView } from './stack';

// these tests train models in worker processes: give each room beyond the suite's default on a busy machine
vi.setConfig({ testTimeout: 300_000 });

const stack = useStack('workers', { everyMs: 300 });
const startWorker = () => stack.startWorker({ AFT_BACKEND: 'wasm' });
/** A worker for the next test: the one an earlier test left running, else a new one. */
const ensureWorker = () => {
  if (!stack.workers.some((w) => w.proc.exitCode === null)) startWorker();
};

describe('degradation during a sweep', () => {
  it('stops a collapsing run under the stop policy and flags one under the flag policy, with onset and evidence', async () => {
    ensureWorker();
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
    const launched = await stack.call<{ sweepId: string }>('sweeps.launch', {
      name: 'collapse',
      project: 'worker-test',
      base: { ...base, ...collapse },
      onDegradation: 'stop',
    });
    type SweepView = { runs: (RunView & { method: string; degradedAt: number | null; parentRunId: string | null })[] };
    const s = await stack.untilSweepFinished<SweepView>('the sweep to finish', launched.sweepId, 180_000, 500);
    const stopped = s.runs.find((r) => r.method === 'aft')!;
    expect(stopped.status).toBe('failed');
    expect(stopped.error).toMatch(/degraded at step \d+ \(.+\); stopped by the sweep's policy/);
    const ev = await stack.t.db.pool.query<{ step: number; details: { evidence: unknown[]; policy: string } }>(
      `SELECT step, details FROM event WHERE run_id = $1 AND kind = 'degradation-detected'`,
      [stopped.id],
    );
    expect(ev.rows).toHaveLength(1);
    expect(ev.rows[0]!.details.evidence.length).toBeGreaterThan(0);
    expect(ev.rows[0]!.details.policy).toBe('stop');
    expect(stopped.degradedAt).toBe(ev.rows[0]!.step);
    const trained = [...(await stack.pointsOf(stopped.id)).keys()].filter((k) => k.startsWith('train/loss@')).length;
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
    const { runId } = await stack.call<{ runId: string }>('runs.launch', {
      kind: 'align',
      project: 'worker-test',
      parentRunId,
      config: flagCfg,
    });
    const flagged = await stack.untilFinished('the flagged run to finish', () => stack.runView(runId), 120_000, 300);
    expect(flagged.status).toBe('succeeded');
    expect(flagged.summary['degraded']).toBe(true);
    const ev2 = await stack.t.db.pool.query(
      `SELECT step FROM event WHERE run_id = $1 AND kind = 'degradation-detected'`,
      [runId],
    );
    expect(ev2.rows).toHaveLength(1);
    expect([...(await stack.pointsOf(runId)).keys()].filter((k) => k.startsWith('train/loss@'))).toHaveLength(16);
    expect(ev2.rows[0].step).toBe(4);
    const good = await stack.t.db.pool.query(`SELECT step FROM artifact WHERE run_id = $1 AND name = 'last-good'`, [
      runId,
    ]);
    expect(good.rows).toEqual([{ step: 2 }]);

    // fork from the last good checkpoint with a constraint: it starts there, from the same parent
    const fork = await stack.call<{ runId: string }>('runs.launch', {
      kind: 'align',
      project: 'worker-test',
      parentRunId,
      forkOf: runId,
      config: { ...flagCfg, constraint: 'boundary', steps: 4, overrides: ALIGN_OVERRIDES },
    });
    const forked = await stack.untilFinished('the fork to finish', () => stack.runView(fork.runId), 120_000, 300);
    expect(forked.status).toBe('succeeded');
    const fev = await stack.t.db.pool.query<{ details: { fromRun: string; fromStep: number } }>(
      `SELECT details FROM event WHERE run_id = $1 AND kind = 'forked'`,
      [fork.runId],
    );
    expect(fev.rows.map((r) => r.details)).toEqual([{ fromRun: runId, fromStep: 2 }]);
    // a run without a last good checkpoint cannot be forked
    const refused = await stack.api.call(
      'runs.launch',
      { kind: 'align', project: 'worker-test', parentRunId, forkOf: fork.runId, config: flagCfg },
      { key: stack.key },
    );
    expect(refused.status).toBe(412);
    expect(refused.json.error!.message).toMatch(/has no last good checkpoint/);
  });
});

describe('cancellation', () => {
  it('stops a running run within seconds and marks it canceled', async () => {
    ensureWorker();
    const { runId } = await stack.call<{ runId: string }>('runs.launch', {
      kind: 'vft',
      project: 'worker-test',
      config: vftConfig(5000),
    });
    await stack.until('the run to log steps', async () => (await stack.pointsOf(runId)).size > 20);
    const t0 = Date.now();
    const res = await stack.call<{ canceled: boolean }>('runs.cancel', { id: runId });
    expect(res.canceled).toBe(true);
    const job = await stack.producer.runs.getJob(runId);
    await stack.until(
      'the job to stop',
      async () => ['completed', 'failed'].includes((await job!.getState()) as string),
      30_000,
      100,
    );
    const stoppedAfter = Date.now() - t0;
    expect(stoppedAfter).toBeLessThan(10_000);
    const run = await stack.runView(runId);
    expect(run.status).toBe('canceled');
    const steps = [...(await stack.pointsOf(runId)).keys()].filter((k) => k.startsWith('train/loss@')).length;
    expect(steps).toBeLessThan(5000);
    // and it stays stopped
    await new Promise((r) => setTimeout(r, 1500));
    expect([...(await stack.pointsOf(runId)).keys()].filter((k) => k.startsWith('train/loss@')).length).toBe(steps);
  });

  it('cancels what has not finished when a sweep is canceled', async () => {
    ensureWorker();
    const launched = await stack.call<{ sweepId: string }>('sweeps.launch', {
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
    type SweepView = { status: string; runs: (RunView & { method: string })[] };
    const parent = await stack.until('the parent to start', async () => {
      const s = await stack.call<SweepView>('sweeps.get', { id: launched.sweepId }, 'GET');
      const p = s.runs.find((r) => r.method === 'vft' && r.status === 'running');
      return p && (await stack.pointsOf(p.id)).size > 5 ? p : null;
    });
    const res = await stack.call<{ canceled: number }>('sweeps.cancel', { id: launched.sweepId });
    expect(res.canceled).toBe(3);
    let last = '';
    const s = await stack
      .until(
        'every run to stop',
        async () => {
          const v = await stack.call<SweepView>('sweeps.get', { id: launched.sweepId }, 'GET');
          const job = await stack.producer.runs.getJob(parent.id);
          const state = await job?.getState();
          last = `${v.runs.map((r) => `${r.method}:${r.status}`).join(', ')}; parent job ${state}`;
          // the release job has also run (it must leave the canceled runs alone)
          const release = await stack.producer.control.getJob(`release-${parent.id}`);
          const released = (await release?.getState()) === 'completed';
          return v.runs.every((r) => r.status === 'canceled') && state !== 'active' && released ? v : null;
        },
        30_000,
      )
      .catch((e: Error) => {
        throw new Error(`${e.message}\nlast seen: ${last}`);
      });
    expect(s.status).toBe('canceled');
    // the alignment runs never trained
    for (const r of s.runs.filter((r) => r.method !== 'vft')) expect((await stack.pointsOf(r.id)).size).toBe(0);
  });
});

describe('failures', () => {
  const failedRun = async (config: unknown) => {
    ensureWorker();
    const { runId } = await stack.call<{ runId: string }>('runs.launch', {
      kind: 'vft',
      project: 'worker-test',
      config,
    });
    const run = await stack.untilFinished('the run to fail', () => stack.runView(runId), 120_000, 200);
    const job = await stack.producer.runs.getJob(runId);
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
    ensureWorker();
    const team = await stack.t.db.prisma.team.findFirstOrThrow({ where: { slug: 'workers' } });
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
    const { ids, tokens } = await createQueuedRuns(stack.t.db.pool, team.id, 'worker-test', [
      row('payload', { preset: 'tiny', seed: 1, overrides: {}, sampling: [] }),
      row('config', { preset: 'huge', seed: 1 }),
    ]);
    // as another version of the platform might have written them: the producer's and the launch's checks bypassed
    const jobs = {
      payload: { kind: 'ppo', runId: ids.get('payload'), runToken: tokens.get('payload') },
      config: { kind: 'vft', runId: ids.get('config'), runToken: tokens.get('config') },
    };
    for (const data of Object.values(jobs))
      await stack.producer.runs.add('train', data, { jobId: data.runId, attempts: 3 });
    for (const [ref, error] of [
      ['payload', /bad job payload: kind/],
      ['config', /bad run config: preset/],
    ] as const) {
      const runId = ids.get(ref)!;
      const run = await stack.untilFinished(`the ${ref} run to fail`, () => stack.runView(runId));
      expect(run.status).toBe('failed');
      expect(run.error).toMatch(error);
      expect((await stack.producer.runs.getJob(runId))!.attemptsMade).toBe(1);
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
