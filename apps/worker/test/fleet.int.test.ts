/**
 * The fleet end to end (docs/architecture.md, "Workers anywhere"): real worker processes register and heartbeat in
 * Redis; a worker killed with SIGKILL expires to gone, its job shows stalled, and once another worker takes it,
 * resumed there; a graceful stop takes a worker off the list; the run it trained has plausible `sys/*` metrics at
 * every training step. Real Postgres (a database for this file), Redis (a queue with a random name), the API over
 * HTTP, and another team that must not learn the run's id.
 */
import { cpus, hostname } from 'node:os';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { useStack } from './stack';

vi.setConfig({ testTimeout: 300_000 });
const HEARTBEAT_MS = 300;

const s = useStack('fleet-alpha', { everyMs: 100 });
let alpha: string;
let beta: string;
const startWorker = () => s.startWorker({ AFT_BACKEND: 'wasm', AFT_HEARTBEAT_MS: String(HEARTBEAT_MS) });

/** What fleet.list answers (libs/api router/fleet.ts), as far as this test reads it; the worker may not import the API. */
interface FleetJobView {
  runId: string;
  runName: string;
  queue: string;
  state: string;
  elsewhere: { host: string; pid: number } | null;
}
interface FleetView {
  workers: {
    pid: number;
    host: string;
    status: string;
    version: string;
    pools: unknown[];
    resources: unknown;
    jobs: FleetJobView[];
    otherJobs: number;
  }[];
  stalled: FleetJobView[];
  otherStalled: number;
}
const fleet = (as = alpha) => s.call<FleetView>('fleet.list', null, 'GET', as);

beforeAll(async () => {
  alpha = s.key;
  beta = await s.addTeam('fleet-beta', ['read']);
});

describe('the fleet', () => {
  it('lists a killed worker as gone, its job stalled, then resumed on the next worker; sys/* metrics on the run', async () => {
    const first = startWorker();
    const one = await s.until('the first worker to register', async () =>
      (await fleet()).workers.find((w) => w.pid === first.proc.pid && w.status === 'alive'),
    );
    expect(one).toMatchObject({
      host: hostname(),
      pools: [{ kind: 'cpu', queue: s.queue, concurrency: 1, backend: 'wasm', adapter: null }],
      resources: { cores: cpus().length, concurrency: 1, gpus: 0 },
      jobs: [],
      otherJobs: 0,
    });
    expect(one.version).toMatch(/^\d+\.\d+\.\d+/);

    const steps = 60;
    const { runId } = await s.call<{ runId: string }>(
      'runs.launch',
      {
        kind: 'vft',
        project: 'fleet-test',
        name: 'fleet-run',
        config: {
          preset: 'tiny',
          seed: 5,
          steps,
          sampling: [],
          overrides: { batchSize: 8, evalEvery: 30, evalQuestions: 4, checkpointEvery: 10, 'data.train': 1000 },
        },
      },
      'POST',
      alpha,
    );
    const running = await s.until('the run in the first worker’s hands', async () => {
      const w = (await fleet()).workers.find((x) => x.pid === first.proc.pid);
      return w?.jobs.length ? w : null;
    });
    expect(running.jobs).toMatchObject([{ runId, runName: 'fleet-run', state: 'running', queue: s.queue }]);
    // another team sees the worker busy, not with what
    const theirs = await fleet(beta);
    const seen = theirs.workers.find((x) => x.pid === first.proc.pid)!;
    expect([seen.jobs, seen.otherJobs]).toEqual([[], 1]);
    expect(JSON.stringify(theirs)).not.toContain(runId);

    // past a checkpoint, then kill -9: the record expires within three beats, the job is stalled
    await s.until('a checkpoint', async () => {
      const a = await s.call<{ kind: string; step: number }[]>('artifacts.list', { runId }, 'GET');
      return a.some((x) => x.kind === 'checkpoint' && x.step >= 10);
    });
    first.proc.kill('SIGKILL');
    await new Promise((r) => first.proc.once('exit', r));
    const killedAt = Date.now();
    const dead = await s.until('the killed worker to read as gone', async () => {
      const f = await fleet();
      const w = f.workers.find((x) => x.pid === first.proc.pid);
      return w?.status === 'gone' ? { f, w } : null;
    });
    expect(Date.now() - killedAt).toBeLessThan(HEARTBEAT_MS * 3 + 5_000);
    expect(dead.w.jobs).toMatchObject([{ runId, state: 'stalled' }]);
    expect(dead.f.stalled.map((j) => j.runId)).toEqual([runId]);
    expect((await fleet(beta)).otherStalled).toBe(1);

    const second = startWorker();
    const moved = await s.until('the job resumed on the second worker', async () => {
      const f = await fleet();
      const d = f.workers.find((x) => x.pid === first.proc.pid);
      const s = f.workers.find((x) => x.pid === second.proc.pid);
      return d?.jobs[0]?.state === 'resumed' && s?.jobs[0]?.runId === runId ? { d, s, f } : null;
    });
    expect(moved.d.jobs[0]!.elsewhere).toMatchObject({ host: hostname(), pid: second.proc.pid });
    expect(moved.s.jobs[0]!.state).toBe('running');
    expect(moved.f.stalled).toEqual([]);

    const run = await s.untilFinished('the run to finish', () => s.runView(runId), 240_000);
    expect(run.status, run.error ?? '').toBe('succeeded');

    type Raw = { key: string; steps: number[]; values: number[] };
    const series = await s.call<Raw[]>(
      'metrics.series',
      { runIds: [runId], keys: ['sys/cpu_percent', 'sys/rss_mb', 'sys/tokens_per_s', 'train/tokens_per_s'] },
      'GET',
    );
    const of = (k: string) => series.find((s) => s.key === k)!;
    for (const k of ['sys/cpu_percent', 'sys/rss_mb', 'train/tokens_per_s'])
      expect(of(k).steps, k).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
    for (const v of of('sys/cpu_percent').values) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(100 * cpus().length * 1.05);
    }
    // training keeps a core busy: on average well above idle
    const cpu = of('sys/cpu_percent').values;
    expect(cpu.reduce((a, b) => a + b, 0) / cpu.length).toBeGreaterThan(10);
    for (const v of of('sys/rss_mb').values) expect(v).toBeGreaterThan(50);
    // the step's throughput is train/tokens_per_s only: no sys/ copy
    expect(series.find((s) => s.key === 'sys/tokens_per_s')?.values ?? []).toEqual([]);
    console.log(
      `sys/cpu_percent mean ${(cpu.reduce((a, b) => a + b, 0) / cpu.length).toFixed(1)} max ${Math.max(...cpu).toFixed(1)}; ` +
        `sys/rss_mb max ${Math.max(...of('sys/rss_mb').values).toFixed(0)}; train/tokens_per_s median ${[
          ...of('train/tokens_per_s').values,
        ]
          .sort((a, b) => a - b)
          [Math.floor(steps / 2)]!.toFixed(0)}`,
    );

    // a graceful stop: off the list at once, not gone
    await s.stopWorker(second);
    expect((await fleet()).workers.map((w) => w.pid)).not.toContain(second.proc.pid);
  });
});
