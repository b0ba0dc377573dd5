/**
 * What the worker's integration tests share: a database for the file, a queue with a random name (its CPU, GPU and
 * control queues), a team and its API key, the API served over HTTP, worker processes each started with the
 * environment a test gives it, and waiting for what they do. Each test file starts one stack and closes it after.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { createTestDatabase, storedPoints, type TestDatabase } from '@aft/db/testing';
import { createTeamWithKey, createTestHandler, serveFetch } from '@aft/api/testing';
import { createRedis, dropTestQueues, fleetKeys, JobProducer, testQueueName } from '@aft/queue';

export const ROOT = resolve(import.meta.dirname, '../../..');

/** The `tiny` preset cut to seconds per run, on any backend (tfjs's cpu backend included). */
export const QUICK_VFT_OVERRIDES = {
  batchSize: 4,
  evalEvery: 20,
  evalQuestions: 4,
  checkpointEvery: 10,
  'data.train': 200,
  'data.val': 4,
  'data.test': 4,
  'eval.maxNewTokens': 8,
  'eval.assessQuestions': 0,
};
export const QUICK_ALIGN_OVERRIDES = {
  evalEvery: 2,
  evalQuestions: 4,
  checkpointEvery: 2,
  'eval.assessQuestions': 0,
  'eval.maxNewTokens': 8,
  'spec.groupsPerStep': 2,
};
/** The `tiny` preset with evaluations large enough to sample, assess and compare runs by (sweeps, resumes). */
export const VFT_OVERRIDES = {
  batchSize: 8,
  evalEvery: 20,
  evalQuestions: 8,
  checkpointEvery: 10,
  'data.train': 1000,
  'data.val': 16,
  'data.test': 16,
  'eval.maxNewTokens': 32,
};
export const ALIGN_OVERRIDES = {
  evalEvery: 4,
  evalQuestions: 8,
  checkpointEvery: 4,
  'eval.assessQuestions': 4,
  'eval.k': 2,
  'eval.maxNewTokens': 32,
  'spec.groupsPerStep': 4,
};
export const vftConfig = (steps: number, seed = 3) => ({
  preset: 'tiny' as const,
  seed,
  steps,
  overrides: VFT_OVERRIDES,
  sampling: [],
});

export interface Worker {
  proc: ChildProcess;
  log: string[];
  /** Started in a process group of its own, which signals reach whole: the job processes it forked too. */
  detached: boolean;
}

/** A run as the database holds it. */
export interface RunRow {
  id: string;
  status: string;
  error: string | null;
  method: string;
  config: Record<string, unknown>;
}

/** A run as the API's runs.get answers it, as far as these tests read it. */
export interface RunView {
  id: string;
  status: string;
  error: string | null;
  summary: Record<string, unknown>;
}

export const finished = (s: string) => ['succeeded', 'failed', 'canceled'].includes(s);

/** Each file's pace: how long `until` waits by default, and how often it looks. */
export interface StackOptions {
  untilMs?: number;
  everyMs?: number;
}

export type Stack = Awaited<ReturnType<typeof startStack>>;

/**
 * The stack of the tests around the call (a file, or a describe block): started before them, closed after them. What
 * it answers is empty until they run; its members are closures, so it is filled by copying them in.
 */
export function useStack(team: string, options?: StackOptions): Stack {
  const stack = {} as Stack;
  beforeAll(async () => {
    Object.assign(stack, await startStack(team, options));
  });
  afterAll(() => stack.close?.());
  return stack;
}

/** A stack of its own (useStack starts one per file or describe block); `team`: the slug of the team whose key `call` uses. */
export async function startStack(team: string, { untilMs = 120_000, everyMs = 500 }: StackOptions = {}) {
  const t: TestDatabase = await createTestDatabase();
  const queue = testQueueName();
  const producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), queue);
  const api = createTestHandler(t.db, t.url, null, producer);
  const server = await serveFetch(api.handler);
  const key = (await createTeamWithKey(t.db, team)).key;
  const dirs: string[] = [];
  const workers: Worker[] = [];

  /** A temporary directory, removed on close. */
  const tempDir = async (prefix: string) => {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
  const artifacts = await tempDir('aft-artifacts-');

  const startWorker = (env: Record<string, string | undefined> = {}, { detached = false } = {}): Worker => {
    const full: Record<string, string | undefined> = {
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
      ...env,
    };
    // an undefined entry is one the worker must not see (spawn would pass it on as the string "undefined")
    for (const k of Object.keys(full)) if (full[k] === undefined) delete full[k];
    const proc = spawn(process.execPath, ['--import', 'tsx', 'apps/worker/src/main.ts'], {
      cwd: ROOT,
      detached,
      env: full,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const w = { proc, log: [] as string[], detached };
    const take = (d: Buffer) => w.log.push(...d.toString().split('\n').filter(Boolean));
    proc.stdout!.on('data', take);
    proc.stderr!.on('data', take);
    workers.push(w);
    return w;
  };

  const alive = (w: Worker) => w.proc.exitCode === null && w.proc.signalCode === null;

  /** Signals the worker, and for a detached one the job processes it forked. */
  const kill = (w: Worker, signal: NodeJS.Signals) => {
    if (!w.detached) return void w.proc.kill(signal);
    try {
      process.kill(-w.proc.pid!, signal);
    } catch {
      // the group is gone already
    }
  };

  /** SIGTERM, and SIGKILL for what is left after 15 s (of a detached worker's group, whatever is left). */
  const stopWorker = async (w: Worker) => {
    if (!alive(w)) return;
    const exited = new Promise((r) => w.proc.once('exit', r));
    kill(w, 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (w.detached || alive(w)) kill(w, 'SIGKILL');
  };

  const call = async <T>(path: string, input: unknown, method: 'GET' | 'POST' = 'POST', as = key): Promise<T> => {
    const r = await api.call(path, input, { key: as, method });
    if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.json.error?.message}`);
    return r.json.result!.data as T;
  };

  /** Polls `f` until it answers; on a timeout, says what the workers logged last. */
  const until = async <T>(
    what: string,
    f: () => Promise<T | null | undefined | false>,
    timeoutMs = untilMs,
    pollMs = everyMs,
  ): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await f();
      if (v) return v;
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${what}\n${workers.map((w) => w.log.slice(-15).join('\n')).join('\n---\n')}`,
        );
      await new Promise((r) => setTimeout(r, pollMs));
    }
  };

  /** Waits for what `read` answers of a run to be finished (succeeded, failed or canceled), and answers it. */
  const untilFinished = <R extends { status: string }>(
    what: string,
    read: () => Promise<R>,
    timeoutMs?: number,
    pollMs?: number,
  ) =>
    until(
      what,
      async () => {
        const r = await read();
        return finished(r.status) ? r : null;
      },
      timeoutMs,
      pollMs,
    );

  /** Waits for every run of a sweep to be finished, and answers the sweep as sweeps.get does. */
  const untilSweepFinished = <V extends { runs: { status: string }[] }>(
    what: string,
    id: string,
    timeoutMs?: number,
    pollMs?: number,
    as = key,
  ) =>
    until(
      what,
      async () => {
        const v = await call<V>('sweeps.get', { id }, 'GET', as);
        return v.runs.every((r) => finished(r.status)) ? v : null;
      },
      timeoutMs,
      pollMs,
    );

  const getRun = async (id: string) => {
    const res = await t.db.pool.query<RunRow & { backend: string | null }>(
      `SELECT id, status::text AS status, error, method, config, backend FROM run WHERE id = $1`,
      [id],
    );
    return res.rows[0]!;
  };

  const runView = (id: string, as = key) => call<RunView>('runs.get', { id }, 'GET', as);

  /** Every point of a run, as `key@step → value` (wall time left out), from the store (chunks and tail). */
  const pointsOf = async (runId: string): Promise<Map<string, number>> =>
    new Map((await storedPoints(t.db, { runId })).map((p) => [`${p.key}@${p.step}`, p.value]));

  /** Another team, and its key. */
  const addTeam = async (slug: string, scopes?: string[]) => (await createTeamWithKey(t.db, slug, scopes)).key;

  const close = async () => {
    await Promise.all(workers.map(stopWorker));
    await dropTestQueues(producer);
    // the workers' fleet records (docs/architecture.md, "Workers anywhere"), which outlive them by a few heartbeats
    const redis = createRedis('redis://127.0.0.1:6379', 'worker');
    const records = await redis.keys(`${fleetKeys(queue).index.replace(/:index$/, '')}:*`);
    if (records.length) await redis.del(records);
    redis.disconnect();
    await server.close();
    await api.notifier.close();
    await t.drop();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  };

  return {
    t,
    api,
    producer,
    key,
    queue,
    workers,
    tempDir,
    startWorker,
    alive,
    kill,
    stopWorker,
    call,
    until,
    untilFinished,
    untilSweepFinished,
    getRun,
    runView,
    pointsOf,
    addTeam,
    close,
  };
}
