/**
 * What the GPU job tests share: a database for the file, a queue with a random name (its CPU, GPU and control
 * queues), the API served over HTTP, and worker processes each started with the environment a test gives it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createTeamWithKey, createTestHandler, serveFetch } from '@aft/api/testing';
import { createRedis, dropTestQueues, JobProducer, testQueueName } from '@aft/queue';

export const ROOT = resolve(import.meta.dirname, '../../..');

/** The `tiny` preset cut to seconds per run, on any backend (tfjs's cpu backend included). */
export const VFT_OVERRIDES = {
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
export const ALIGN_OVERRIDES = {
  evalEvery: 2,
  evalQuestions: 4,
  checkpointEvery: 2,
  'eval.assessQuestions': 0,
  'eval.maxNewTokens': 8,
  'spec.groupsPerStep': 2,
};

export interface Worker {
  proc: ChildProcess;
  log: string[];
}

export interface RunRow {
  id: string;
  status: string;
  error: string | null;
  method: string;
  config: Record<string, unknown>;
}

export interface Stack {
  t: TestDatabase;
  producer: JobProducer;
  key: string;
  queue: string;
  startWorker(env: Record<string, string | undefined>): Worker;
  stopWorker(w: Worker): Promise<void>;
  call<T>(path: string, input: unknown, method?: 'GET' | 'POST'): Promise<T>;
  until<T>(what: string, f: () => Promise<T | null | undefined | false>, timeoutMs?: number): Promise<T>;
  getRun(id: string): Promise<RunRow & { backend: string | null }>;
  close(): Promise<void>;
}

export async function startStack(team: string): Promise<Stack> {
  const t = await createTestDatabase();
  const queue = testQueueName();
  const producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), queue);
  const api = createTestHandler(t.db, t.url, null, producer);
  const server = await serveFetch(api.handler);
  const key = (await createTeamWithKey(t.db, `${team}-${Math.random().toString(36).slice(2, 8)}`)).key;
  const artifacts = await mkdtemp(join(tmpdir(), 'aft-artifacts-'));
  const workers: Worker[] = [];

  const startWorker = (env: Record<string, string | undefined>): Worker => {
    const full: Record<string, string | undefined> = {
      ...process.env,
      REDIS_URL: 'redis://127.0.0.1:6379',
      AFT_URL: server.url,
      AFT_QUEUE: queue,
      AFT_CONCURRENCY: '1',
      AFT_ARTIFACT_DIR: artifacts,
      AFT_LOCK_MS: '10000',
      AFT_STALLED_MS: '1000',
      ...env,
    };
    // an undefined entry is one the worker must not see (spawn would pass it on as the string "undefined")
    for (const k of Object.keys(full)) if (full[k] === undefined) delete full[k];
    const proc = spawn(process.execPath, ['--import', 'tsx', 'apps/worker/src/main.ts'], {
      cwd: ROOT,
      env: full,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const w = { proc, log: [] as string[] };
    const take = (d: Buffer) => w.log.push(...d.toString().split('\n').filter(Boolean));
    proc.stdout!.on('data', take);
    proc.stderr!.on('data', take);
    workers.push(w);
    return w;
  };

  const stopWorker = async (w: Worker) => {
    if (w.proc.exitCode !== null || w.proc.signalCode !== null) return;
    const exited = new Promise((r) => w.proc.once('exit', r));
    w.proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
    if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
  };

  const call = async <T>(path: string, input: unknown, method: 'GET' | 'POST' = 'POST'): Promise<T> => {
    const r = await api.call(path, input, { key, method });
    if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.json.error?.message}`);
    return r.json.result!.data as T;
  };

  const until = async <T>(what: string, f: () => Promise<T | null | undefined | false>, timeoutMs = 120_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await f();
      if (v) return v;
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${what}\n${workers.map((w) => w.log.slice(-15).join('\n')).join('\n---\n')}`,
        );
      await new Promise((r) => setTimeout(r, 500));
    }
  };

  const getRun = async (id: string) => {
    const res = await t.db.pool.query<RunRow & { backend: string | null }>(
      `SELECT id, status::text AS status, error, method, config, backend FROM run WHERE id = $1`,
      [id],
    );
    return res.rows[0]!;
  };

  const close = async () => {
    await Promise.all(workers.map(stopWorker));
    await dropTestQueues(producer);
    await server.close();
    await api.notifier.close();
    await t.drop();
    await rm(artifacts, { recursive: true, force: true });
  };

  return { t, producer, key, queue, startWorker, stopWorker, call, until, getRun, close };
}

export const finished = (s: string) => ['succeeded', 'failed', 'canceled'].includes(s);
