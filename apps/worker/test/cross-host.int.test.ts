/**
 * Cross-host resume (docs/architecture.md, "The artifact store"): two worker processes, each with its own
 * AFT_ARTIFACT_DIR, share one S3 store (s3rver, started here) and the real Postgres, Redis and API. The worker that
 * holds a VFT is killed with `kill -9` (its whole process group: the job runs in a forked child) after its first
 * published checkpoint; the other takes the stalled job, pulls that checkpoint and finishes — every (metric, step)
 * equal to an uninterrupted run with the same seed, trained meanwhile by the second worker.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hasCheckpoint } from '@aft/aft-core';
import { createTeamWithKey, createTestHandler, serveFetch } from '@aft/api/testing';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createRedis, dropTestQueues, JobProducer, testQueueName } from '@aft/queue';
import { readManifest, type S3Store } from '@aft/storage';
import { startS3rver, type TestS3 } from '@aft/storage/testing';
import { ArtifactStore } from '../src/store';

const ROOT = resolve(import.meta.dirname, '../../..');
const STEPS = 40;
const config = {
  preset: 'tiny' as const,
  seed: 17,
  steps: STEPS,
  overrides: {
    batchSize: 8,
    evalEvery: 20,
    evalQuestions: 8,
    checkpointEvery: 10,
    'data.train': 1000,
    'data.val': 16,
    'data.test': 16,
    'eval.maxNewTokens': 32,
  },
  sampling: [],
};

let t: TestDatabase;
let s3: TestS3;
let shared: S3Store;
let api: ReturnType<typeof createTestHandler>;
let server: Awaited<ReturnType<typeof serveFetch>>;
let producer: JobProducer;
let key: string;
let queue: string;
const dirs: string[] = [];
interface Host {
  proc: ChildProcess;
  dir: string;
  log: string[];
}
const hosts: Host[] = [];

/** A worker process on its own "host": its own directory, the shared bucket, its own process group (to kill). */
async function startHost(concurrency: number): Promise<Host> {
  const dir = await mkdtemp(join(tmpdir(), 'aft-host-'));
  dirs.push(dir);
  const proc = spawn(process.execPath, ['--import', 'tsx', 'apps/worker/src/main.ts'], {
    cwd: ROOT,
    detached: true,
    env: {
      ...process.env,
      ...(s3.env as Record<string, string>), // only strings: the server's address and credentials
      REDIS_URL: 'redis://127.0.0.1:6379',
      AFT_URL: server.url,
      AFT_QUEUE: queue,
      AFT_CONCURRENCY: String(concurrency),
      AFT_ARTIFACT_DIR: dir,
      AFT_ARTIFACT_URL: `s3://${shared.bucket}/lab`,
      // a killed worker's job is taken back within seconds; long enough that a starved worker still renews its lock
      AFT_LOCK_MS: '8000',
      AFT_STALLED_MS: '1000',
      AFT_BACKEND: 'wasm',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const h = { proc, dir, log: [] as string[] };
  for (const s of [proc.stdout!, proc.stderr!])
    s.on('data', (d: Buffer) => h.log.push(...d.toString().split('\n').filter(Boolean)));
  hosts.push(h);
  return h;
}

const alive = (h: Host) => h.proc.exitCode === null && h.proc.signalCode === null;

/** Signals the worker and the job processes it forked. */
function killGroup(h: Host, signal: NodeJS.Signals) {
  try {
    process.kill(-h.proc.pid!, signal);
  } catch {
    // the group is gone already
  }
}

async function until<T>(what: string, f: () => Promise<T | null | undefined | false>, timeoutMs = 90_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}\n${hosts.map((h) => h.log.slice(-15).join('\n')).join('\n---\n')}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function call<T>(path: string, input: unknown, method: 'GET' | 'POST' = 'POST'): Promise<T> {
  const r = await api.call(path, input, { key, method });
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.json.error?.message}`);
  return r.json.result!.data as T;
}

interface RunRow {
  status: string;
  error: string | null;
}
const finished = (s: string) => ['succeeded', 'failed', 'canceled'].includes(s);
const runDone = (id: string) =>
  until(`run ${id} to finish`, async () => {
    const r = await call<RunRow>('runs.get', { id }, 'GET');
    return finished(r.status) ? r : null;
  });

/** A run's metric history through the API, `key@step → value`, leaving out what measures the machine, not the model. */
async function history(runId: string): Promise<Map<string, unknown>> {
  const keys = (await call<{ key: string }[]>('metrics.keys', { runIds: [runId] }, 'GET'))
    .map((k) => k.key)
    .filter((k) => !k.includes('tokens_per_s') && !k.startsWith('sys/'));
  const series = await call<{ key: string; mode: string; steps: number[]; values: unknown[] }[]>(
    'metrics.series',
    { runIds: [runId], keys, buckets: 1000 },
    'GET',
  );
  const out = new Map<string, unknown>();
  for (const s of series) {
    expect(s.mode, s.key).toBe('raw');
    s.steps.forEach((step, i) => out.set(`${s.key}@${step}`, s.values[i]));
  }
  return out;
}

beforeAll(async () => {
  [t, s3] = await Promise.all([createTestDatabase(), startS3rver()]);
  shared = await s3.store({ prefix: 'lab' });
  queue = testQueueName();
  producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), queue);
  api = createTestHandler(t.db, t.url, null, producer);
  server = await serveFetch(api.handler);
  key = (await createTeamWithKey(t.db, 'cross-host')).key;
});

afterAll(async () => {
  for (const h of hosts.filter(alive)) {
    const exited = new Promise((r) => h.proc.once('exit', r));
    killGroup(h, 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    killGroup(h, 'SIGKILL');
  }
  if (producer) await dropTestQueues(producer);
  await server?.close();
  await api?.notifier.close();
  await t?.drop();
  await s3?.close();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

it(
  'a VFT whose host is killed resumes on another host from the S3 checkpoint, ending as an uninterrupted run',
  {
    timeout: 150_000,
  },
  async () => {
    const launch = async (name: string) =>
      (await call<{ runId: string }>('runs.launch', { kind: 'vft', project: 'cross-host', name, config })).runId;
    const a = await startHost(1);
    const crashed = await launch('crashed');
    await until('host A to take the job', async () => a.log.some((l) => l.includes(`job ${crashed} started`)));
    // host B trains the uninterrupted twin meanwhile, and has a free slot for the crashed run once A is gone
    const b = await startHost(2);
    const clean = await launch('clean');
    const ckKey = `runs/${crashed}/checkpoint`;
    await until('host A to publish a checkpoint', () => readManifest(shared, ckKey), 60_000);
    killGroup(a, 'SIGKILL');
    await new Promise((r) => (alive(a) ? a.proc.once('exit', r) : r(null)));
    // the job process it forked went with it: nothing of A trains on, or publishes, beside B
    await until("host A's job process to be gone", async () => {
      try {
        process.kill(-a.proc.pid!, 0);
        return false;
      } catch {
        return true;
      }
    });
    const published = (await readManifest(shared, ckKey))!.meta['step'] as number;
    expect(published).toBeGreaterThanOrEqual(10);
    expect(published).toBeLessThan(STEPS);
    // what B has of the crashed run can only come from the bucket
    const bStore = new ArtifactStore(b.dir, null);
    expect(hasCheckpoint(bStore.checkpointDir(crashed))).toBe(false);

    const [crashedRun, cleanRun] = await Promise.all([runDone(crashed), runDone(clean)]);
    expect(crashedRun, b.log.slice(-20).join('\n')).toMatchObject({ status: 'succeeded', error: null });
    expect(cleanRun).toMatchObject({ status: 'succeeded', error: null });
    expect(b.log.some((l) => l.includes(`job ${crashed} started`))).toBe(true);
    expect(b.log.some((l) => l.includes(`job ${clean} started`))).toBe(true);
    const resumed = await t.db.pool.query<{ step: number }>(
      `SELECT step FROM event WHERE run_id = $1 AND kind = 'resumed'`,
      [crashed],
    );
    expect(resumed.rows.map((r) => r.step)).toEqual([published]);
    expect(hasCheckpoint(bStore.checkpointDir(crashed))).toBe(true);

    const [got, want] = await Promise.all([history(crashed), history(clean)]);
    expect([...got.keys()].filter((k) => k.startsWith('train/loss@'))).toHaveLength(STEPS);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [k, v] of want) expect(got.get(k), k).toBe(v);
  },
);
