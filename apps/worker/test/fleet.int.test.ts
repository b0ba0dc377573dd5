/**
 * The fleet end to end (docs/architecture.md, "Workers anywhere"): real worker processes register and heartbeat in
 * Redis; a worker killed with SIGKILL expires to gone, its job shows stalled, and once another worker takes it,
 * resumed there; a graceful stop takes a worker off the list; the run it trained has plausible `sys/*` metrics at
 * every training step. Real Postgres (a database for this file), Redis (a queue with a random name), the API over
 * HTTP, and another team that must not learn the run's id.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createTeamWithKey, createTestHandler, serveFetch } from '@aft/api/testing';
import { createRedis, dropTestQueues, fleetKeys, JobProducer, testQueueName } from '@aft/queue';

const ROOT = resolve(import.meta.dirname, '../../..');
vi.setConfig({ testTimeout: 300_000 });
const HEARTBEAT_MS = 300;

let t: TestDatabase;
let api: ReturnType<typeof createTestHandler>;
let server: Awaited<ReturnType<typeof serveFetch>>;
let producer: JobProducer;
let alpha: string;
let beta: string;
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
      // as worker.int.test.ts: a killed worker's job comes back within seconds, a starved one keeps its lock
      AFT_LOCK_MS: '10000',
      AFT_STALLED_MS: '1000',
      AFT_BACKEND: 'wasm',
      AFT_HEARTBEAT_MS: String(HEARTBEAT_MS),
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

async function call<T>(path: string, input: unknown, as: string, method: 'GET' | 'POST' = 'GET'): Promise<T> {
  const r = await api.call(path, input, { key: as, method });
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.json.error?.message}`);
  return r.json.result!.data as T;
}
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
const fleet = (as = alpha) => call<FleetView>('fleet.list', null, as);

async function until<T>(what: string, f: () => Promise<T | null | undefined | false>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}\n${workers.map((w) => w.log.slice(-15).join('\n')).join('\n---\n')}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  t = await createTestDatabase();
  queue = testQueueName();
  producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), queue);
  api = createTestHandler(t.db, t.url, null, producer);
  server = await serveFetch(api.handler);
  alpha = (await createTeamWithKey(t.db, 'fleet-alpha')).key;
  beta = (await createTeamWithKey(t.db, 'fleet-beta', ['read'])).key;
  artifacts = await mkdtemp(join(tmpdir(), 'aft-fleet-'));
});

afterAll(async () => {
  await Promise.all(workers.map(stopWorker));
  await dropTestQueues(producer);
  const redis = createRedis('redis://127.0.0.1:6379', 'worker');
  const keys = await redis.keys(`${fleetKeys(queue).index.replace(/:index$/, '')}:*`);
  if (keys.length) await redis.del(keys);
  redis.disconnect();
  await server?.close();
  await api?.notifier.close();
  await t?.drop();
  if (artifacts) await rm(artifacts, { recursive: true, force: true });
});

describe('the fleet', () => {
  it('lists a killed worker as gone, its job stalled, then resumed on the next worker; sys/* metrics on the run', async () => {
    const first = startWorker();
    const one = await until('the first worker to register', async () =>
      (await fleet()).workers.find((w) => w.pid === first.proc.pid && w.status === 'alive'),
    );
    expect(one).toMatchObject({
      host: hostname(),
      pools: [{ kind: 'cpu', queue, concurrency: 1, backend: 'wasm', adapter: null }],
      resources: { cores: cpus().length, concurrency: 1, gpus: 0 },
      jobs: [],
      otherJobs: 0,
    });
    expect(one.version).toMatch(/^\d+\.\d+\.\d+/);

    const steps = 60;
    const { runId } = await call<{ runId: string }>(
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
      alpha,
      'POST',
    );
    const running = await until('the run in the first worker’s hands', async () => {
      const w = (await fleet()).workers.find((x) => x.pid === first.proc.pid);
      return w?.jobs.length ? w : null;
    });
    expect(running.jobs).toMatchObject([{ runId, runName: 'fleet-run', state: 'running', queue }]);
    // another team sees the worker busy, not with what
    const theirs = await fleet(beta);
    const seen = theirs.workers.find((x) => x.pid === first.proc.pid)!;
    expect([seen.jobs, seen.otherJobs]).toEqual([[], 1]);
    expect(JSON.stringify(theirs)).not.toContain(runId);

    // past a checkpoint, then kill -9: the record expires within three beats, the job is stalled
    await until('a checkpoint', async () => {
      const a = await call<{ kind: string; step: number }[]>('artifacts.list', { runId }, alpha);
      return a.some((x) => x.kind === 'checkpoint' && x.step >= 10);
    });
    first.proc.kill('SIGKILL');
    await new Promise((r) => first.proc.once('exit', r));
    const killedAt = Date.now();
    const dead = await until('the killed worker to read as gone', async () => {
      const f = await fleet();
      const w = f.workers.find((x) => x.pid === first.proc.pid);
      return w?.status === 'gone' ? { f, w } : null;
    });
    expect(Date.now() - killedAt).toBeLessThan(HEARTBEAT_MS * 3 + 5_000);
    expect(dead.w.jobs).toMatchObject([{ runId, state: 'stalled' }]);
    expect(dead.f.stalled.map((j) => j.runId)).toEqual([runId]);
    expect((await fleet(beta)).otherStalled).toBe(1);

    const second = startWorker();
    const moved = await until('the job resumed on the second worker', async () => {
      const f = await fleet();
      const d = f.workers.find((x) => x.pid === first.proc.pid);
      const s = f.workers.find((x) => x.pid === second.proc.pid);
      return d?.jobs[0]?.state === 'resumed' && s?.jobs[0]?.runId === runId ? { d, s, f } : null;
    });
    expect(moved.d.jobs[0]!.elsewhere).toMatchObject({ host: hostname(), pid: second.proc.pid });
    expect(moved.s.jobs[0]!.state).toBe('running');
    expect(moved.f.stalled).toEqual([]);

    const run = await until(
      'the run to finish',
      async () => {
        const r = await call<{ status: string; error: string | null }>('runs.get', { id: runId }, alpha);
        return ['succeeded', 'failed', 'canceled'].includes(r.status) ? r : null;
      },
      240_000,
    );
    expect(run.status, run.error ?? '').toBe('succeeded');

    type Raw = { key: string; steps: number[]; values: number[] };
    const series = await call<Raw[]>(
      'metrics.series',
      { runIds: [runId], keys: ['sys/cpu_percent', 'sys/rss_mb', 'sys/tokens_per_s', 'train/tokens_per_s'] },
      alpha,
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
    await stopWorker(second);
    expect((await fleet()).workers.map((w) => w.pid)).not.toContain(second.proc.pid);
  });
});
