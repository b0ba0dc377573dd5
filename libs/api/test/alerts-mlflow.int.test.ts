/**
 * Scripts that log through the MLflow-compatible API fire the same alert rules as our own procedures: a metric
 * logged with `runs/log-metric` or `runs/log-batch` crosses a threshold, a run updated to FAILED fails. Each goes
 * through the real queue (Redis) and the worker's consumer to a receiver on 127.0.0.1, as in alerts.int.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '@aft/db/testing';
import { RunNotifier } from '@aft/db';
import type { JobProducer } from '@aft/queue';
import { appRouter, createCallerFactory, createContextInner, createMlflowHandler } from '../src';
import { createMember, createTeamWithKey } from '../src/testing';
import { startAlertStack } from './alert-stack';
import { startReceiver, until } from './alert-receiver';

// the receiver is on 127.0.0.1, which rules may only name with this set
process.env['AFT_ALERTS_ALLOW_PRIVATE'] = '1';

let stack: Awaited<ReturnType<typeof startAlertStack>>;
let t: TestDatabase;
let notifier: RunNotifier;
let producer: JobProducer;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let mlflow: (req: Request) => Promise<Response>;
let key: string;
let member: ReturnType<typeof caller>;
const caller = (userId: string) =>
  createCallerFactory(appRouter)(createContextInner({ db: t.db, notifier, apiKey: null, userId, jobs: producer }));
const dir = mkdtempSync(join(tmpdir(), 'aft-alerts-mlflow-'));

beforeAll(async () => {
  stack = await startAlertStack();
  ({ t, notifier, producer, receiver } = stack);
  mlflow = createMlflowHandler({ db: t.db, notifier, auth: null, artifactDir: dir, jobs: producer });
  key = (await createTeamWithKey(t.db, 'lab')).key;
  const userId = (await createMember(t.db, 'lab', 'member')).user.id;
  member = caller(userId);
});
afterAll(async () => {
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** An MLflow REST call with the team's key; the JSON answer (a non-200 throws). */
async function call<T = unknown>(path: string, body: Record<string, unknown>): Promise<T> {
  const res = await mlflow(
    new Request(`http://test/api/2.0/mlflow/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify(body),
    }),
  );
  const json = (await res.json()) as T;
  if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

let n = 0;
/** A fresh experiment (a project) with one rule on it posting to a path of its own. */
async function experimentWithRule(kind: 'metric-threshold' | 'run-failed', extra: Record<string, unknown> = {}) {
  const { experiment_id } = await call<{ experiment_id: string }>('experiments/create', {
    name: `exp-${++n}-${Date.now()}`,
  });
  const path = `/mlflow-hook-${n}`;
  await member.alerts.create({
    projectId: experiment_id,
    name: `rule ${n}`,
    kind,
    url: `${receiver.url}${path}`,
    ...extra,
  });
  const newRun = async (name: string) =>
    (await call<{ run: { info: { run_id: string } } }>('runs/create', { experiment_id, run_name: name })).run.info
      .run_id;
  return { path, newRun };
}

const settle = () => new Promise((r) => setTimeout(r, 400));
const aftOf = (path: string) => receiver.at(path).map((p) => JSON.parse(p.body).aft);

describe('alerts from the MLflow API', () => {
  it('a metric logged with runs/log-metric or runs/log-batch crosses a threshold: the rule fires for each run', async () => {
    const { path, newRun } = await experimentWithRule('metric-threshold', {
      metricKey: 'loss',
      op: 'above',
      threshold: 5,
    });
    const single = await newRun('single');
    await call('runs/log-metric', { run_id: single, key: 'loss', value: 2, timestamp: Date.now(), step: 1 });
    await settle();
    expect(receiver.at(path)).toHaveLength(0);
    await call('runs/log-metric', { run_id: single, key: 'loss', value: 9.5, timestamp: Date.now(), step: 3 });
    await until(() => receiver.at(path).length === 1, 15_000, 'the log-metric POST');
    expect(aftOf(path)[0]).toMatchObject({
      kind: 'metric-threshold',
      run: { id: single, name: 'single' },
      step: 3,
      evidence: { key: 'loss', value: 9.5, op: 'above', threshold: 5 },
    });

    const batched = await newRun('batched');
    const now = Date.now();
    await call('runs/log-batch', {
      run_id: batched,
      metrics: [
        { key: 'loss', value: 1, timestamp: now, step: 1 },
        { key: 'acc', value: 99, timestamp: now, step: 1 },
        { key: 'loss', value: 7, timestamp: now, step: 2 },
      ],
    });
    await until(() => receiver.at(path).length === 2, 15_000, 'the log-batch POST');
    await settle();
    expect(receiver.at(path)).toHaveLength(2);
    expect(aftOf(path).find((a) => a.run.id === batched)).toMatchObject({ step: 2, evidence: { value: 7 } });
  });

  it('a run updated to FAILED fires run-failed once; one updated to FINISHED or KILLED does not', async () => {
    const { path, newRun } = await experimentWithRule('run-failed');
    const fine = await newRun('fine');
    const stopped = await newRun('stopped');
    const broken = await newRun('broken');
    await call('runs/update', { run_id: fine, status: 'FINISHED', end_time: Date.now() });
    await call('runs/update', { run_id: stopped, status: 'KILLED' });
    await call('runs/update', { run_id: broken, status: 'FAILED', end_time: Date.now() });
    await call('runs/update', { run_id: broken, status: 'FAILED' });
    await until(() => receiver.at(path).length === 1, 15_000, 'the run-failed POST');
    await settle();
    expect(receiver.at(path)).toHaveLength(1);
    expect(aftOf(path)[0]).toMatchObject({ kind: 'run-failed', run: { id: broken, name: 'broken', status: 'failed' } });
  });
});
