/**
 * Crash safety end to end with real Postgres, Redis, the API over HTTP and worker processes (stack.ts): a run whose
 * worker is killed with `kill -9` resumes from its checkpoint on the next worker and ends exactly as an uninterrupted
 * run; a worker stopped with SIGTERM hands its job back for the next one to resume.
 */
import { describe, expect, it, vi } from 'vitest';
import { useStack, vftConfig, type RunView } from './stack';

// these tests train models in worker processes: give each room beyond the suite's default on a busy machine
vi.setConfig({ testTimeout: 300_000 });

const stack = useStack('workers', { everyMs: 300 });
const startWorker = () => stack.startWorker({ AFT_BACKEND: 'wasm' });

describe('crash safety', () => {
  it('resumes a run from its checkpoint after kill -9 of its worker, ending exactly as an uninterrupted run', async () => {
    await Promise.all(stack.workers.map(stack.stopWorker));
    const first = startWorker();
    const steps = 60;
    const { runId } = await stack.call<{ runId: string }>('runs.launch', {
      kind: 'vft',
      project: 'worker-test',
      name: 'crashed',
      config: vftConfig(steps, 11),
    });
    await stack.until(
      'a checkpoint and more steps',
      async () => {
        const ck = await stack.t.db.pool.query(`SELECT step FROM artifact WHERE run_id = $1 AND kind = 'checkpoint'`, [
          runId,
        ]);
        return (
          (ck.rows[0]?.step ?? 0) >= 20 && [...(await stack.pointsOf(runId)).keys()].some((k) => k === 'train/loss@25')
        );
      },
      120_000,
      50,
    );
    first.proc.kill('SIGKILL');
    await new Promise((r) => first.proc.once('exit', r));
    expect((await stack.runView(runId)).status).toBe('running');
    startWorker();
    const crashed = await stack.untilFinished('the resumed run to finish', () => stack.runView(runId), 180_000, 500);
    expect(crashed.status, `${crashed.error ?? ''}\n${stack.workers.at(-1)!.log.slice(-20).join('\n')}`).toBe(
      'succeeded',
    );
    expect(stack.workers.at(-1)!.log.join('\n')).toContain(`job ${runId} started`);
    // the second worker resumed from the checkpoint rather than starting over
    const resumed = await stack.t.db.pool.query<{ step: number }>(
      `SELECT step FROM event WHERE run_id = $1 AND kind = 'resumed'`,
      [runId],
    );
    expect(resumed.rows).toHaveLength(1);
    expect(resumed.rows[0]!.step).toBeGreaterThanOrEqual(20);

    const { runId: cleanId } = await stack.call<{ runId: string }>('runs.launch', {
      kind: 'vft',
      project: 'worker-test',
      name: 'clean',
      config: vftConfig(steps, 11),
    });
    const clean = await stack.untilFinished('the uninterrupted run', () => stack.runView(cleanId), 180_000, 500);
    expect(clean.status).toBe('succeeded');

    // timings and the machine's own load (sys/*) differ from run to run; everything else must not
    const timing = (k: string) => k.includes('tokens_per_s') || k.startsWith('sys/');
    const a = await stack.pointsOf(runId);
    const b = await stack.pointsOf(cleanId);
    const keysA = [...a.keys()].filter((k) => !timing(k)).sort();
    const keysB = [...b.keys()].filter((k) => !timing(k)).sort();
    expect(keysA).toEqual(keysB); // nothing missing, nothing extra (a point is unique per key and step)
    expect(keysA.filter((k) => k.startsWith('train/loss@'))).toHaveLength(steps);
    for (const k of keysA) expect(a.get(k), k).toBe(b.get(k));
    const finals = (r: RunView) => Object.fromEntries(Object.entries(r.summary).filter(([k]) => k.startsWith('test/')));
    expect(Object.keys(finals(crashed)).length).toBeGreaterThan(3);
    expect(finals(crashed)).toEqual(finals(clean));
  });

  it('on SIGTERM hands its job back without failing or canceling the run; the next worker resumes it', async () => {
    await Promise.all(stack.workers.map(stack.stopWorker));
    const w = startWorker();
    const { runId } = await stack.call<{ runId: string }>('runs.launch', {
      kind: 'vft',
      project: 'worker-test',
      name: 'shutdown',
      config: vftConfig(80, 12),
    });
    await stack.until(
      'some steps',
      async () => [...(await stack.pointsOf(runId)).keys()].some((k) => k === 'train/loss@15'),
      120_000,
      50,
    );
    const t0 = Date.now();
    await stack.stopWorker(w);
    expect(w.proc.exitCode).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const job = await stack.producer.runs.getJob(runId);
    expect(['delayed', 'waiting']).toContain(await job!.getState());
    expect(job!.attemptsMade).toBe(0);
    expect((await stack.runView(runId)).status).toBe('running');
    startWorker();
    const done = await stack.untilFinished('the run to finish elsewhere', () => stack.runView(runId), 180_000, 500);
    expect(done.status).toBe('succeeded');
    const resumed = await stack.t.db.pool.query<{ step: number }>(
      `SELECT step FROM event WHERE run_id = $1 AND kind = 'resumed'`,
      [runId],
    );
    expect(resumed.rows[0]?.step).toBeGreaterThanOrEqual(15);
    expect([...(await stack.pointsOf(runId)).keys()].filter((k) => k.startsWith('train/loss@'))).toHaveLength(80);
  });
});
