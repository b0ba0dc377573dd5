/**
 * fleet.list against real Postgres and Redis (libs/api router/fleet.ts): every viewer sees every worker, but a run
 * in a worker's hands is named only to members of its team (a person in several teams sees all of theirs), and
 * counted for anyone else; a dead worker's jobs read as stalled until a live worker holds them, then as resumed
 * there. Jobs are held by in-process BullMQ workers (real locks); no training.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { RunNotifier } from '@aft/db';
import {
  createRedis,
  dropTestQueues,
  FleetHeartbeat,
  fleetKeys,
  JobProducer,
  testQueueName,
  type WorkerRecord,
} from '@aft/queue';
import { appRouter, createCallerFactory, createContextInner } from '../src';
import { createMember, createTeamWithKey } from '../src/testing';

let t: TestDatabase;
let notifier: RunNotifier;
let producer: JobProducer;
const redis = createRedis('redis://127.0.0.1:6379', 'worker');
const workers: Worker[] = [];
const beats: FleetHeartbeat[] = [];
let release!: () => void;
const held = new Promise<void>((r) => (release = r));
const uniq = () => Math.random().toString(36).slice(2, 8);
const as = (ctx: { userId?: string; apiKey?: string }, jobs: JobProducer | null = producer) =>
  createCallerFactory(appRouter)(createContextInner({ db: t.db, notifier, apiKey: null, jobs, ...ctx }));

const runs = {} as Record<'a' | 'b' | 'c' | 'stalled', string>;
let teamA: ReturnType<typeof as>;
let teamAandC: ReturnType<typeof as>;
let keyB: ReturnType<typeof as>;

function record(id: string, bullId: string, jobs: WorkerRecord['jobs'] = []): Omit<WorkerRecord, 'lastSeen'> {
  return {
    id,
    host: `host-${id}`,
    pid: 100,
    version: '0.1.0',
    startedAt: Date.now(),
    heartbeatMs: 60_000,
    pools: [{ kind: 'cpu', queue: producer.queueName, concurrency: 4, backend: 'wasm', adapter: null, bullId }],
    resources: { cores: 2, memoryMb: 2048, concurrency: 4, gpus: 0 },
    jobs,
  };
}

async function runIn(team: string, name: string): Promise<string> {
  const tm = await t.db.prisma.team.findUniqueOrThrow({ where: { slug: team } });
  const p = await t.db.prisma.project.create({ data: { teamId: tm.id, name: `fleet-${uniq()}` } });
  return (await t.db.prisma.run.create({ data: { projectId: p.id, name, status: 'running' } })).id;
}

async function untilActive(n: number) {
  for (let i = 0; i < 100; i++) {
    if ((await producer.fleet()).active.filter((j) => j.locked).length >= n) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`fewer than ${n} jobs became active`);
}

beforeAll(async () => {
  t = await createTestDatabase();
  notifier = new RunNotifier(t.url);
  producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), testQueueName());
  teamA = as({ userId: (await createMember(t.db, 'alpha', 'viewer')).user.id });
  const both = await createMember(t.db, 'alpha', 'member');
  await createMember(t.db, 'gamma', 'owner').then(async (m) => {
    // the second member of alpha is also in gamma
    await t.db.prisma.membership.create({ data: { teamId: m.team.id, userId: both.user.id, role: 'viewer' } });
  });
  teamAandC = as({ userId: both.user.id });
  keyB = as({ apiKey: (await createTeamWithKey(t.db, 'beta', ['read'])).key });
  runs.a = await runIn('alpha', 'alpha-run');
  runs.b = await runIn('beta', 'beta-secret-run');
  runs.c = await runIn('gamma', 'gamma-run');
  runs.stalled = await runIn('alpha', 'alpha-stalled');

  // "live" holds a, b and c; "orphan" (a BullMQ worker no live record names) holds the stalled one
  const live = new Worker(producer.queueName, () => held, { connection: redis, concurrency: 3, autorun: false });
  const orphan = new Worker(producer.queueName, () => held, { connection: redis, concurrency: 1, autorun: false });
  workers.push(live, orphan);
  for (const id of [runs.a, runs.b, runs.c])
    await producer.enqueueRun({ kind: 'vft', runId: id, runToken: 'aftrun_x' });
  void live.run();
  await untilActive(3);
  await producer.enqueueRun({ kind: 'vft', runId: runs.stalled, runToken: 'aftrun_x' });
  void orphan.run();
  await untilActive(4);

  const liveBeat = new FleetHeartbeat(redis, producer.queueName, () => record('w-live', live.id));
  // the dead worker held a (now resumed on w-live) and the stalled one; its live key is gone
  const deadBeat = new FleetHeartbeat(redis, producer.queueName, () =>
    record('w-dead', 'bull-dead', [
      { runId: runs.a, queue: producer.queueName, since: 1 },
      { runId: runs.stalled, queue: producer.queueName, since: 1 },
    ]),
  );
  beats.push(liveBeat, deadBeat);
  await liveBeat.beat();
  await deadBeat.beat();
  await redis.del(fleetKeys(producer.queueName).live('w-dead'));
});

afterAll(async () => {
  release?.();
  for (const b of beats) await b.stop('w-live').catch(() => undefined);
  await redis.del([fleetKeys(producer.queueName).last('w-dead'), fleetKeys(producer.queueName).index]);
  await Promise.all(workers.map((w) => w.close(true)));
  await dropTestQueues(producer);
  redis.disconnect();
  await notifier?.close();
  await t?.drop();
});

describe('fleet.list', () => {
  it('shows every worker to every team, and names only the runs of the viewer’s teams', async () => {
    const a = await teamA.fleet.list();
    expect(a.workers.map((w) => [w.id, w.status])).toEqual([
      ['w-live', 'alive'],
      ['w-dead', 'gone'],
    ]);
    const liveA = a.workers[0]!;
    expect(liveA.jobs.map((j) => [j.runName, j.state])).toEqual([['alpha-run', 'running']]);
    expect(liveA.otherJobs).toBe(2);
    expect(liveA.pools[0]).not.toHaveProperty('bullId');

    const ac = await teamAandC.fleet.list();
    expect(ac.workers[0]!.jobs.map((j) => j.runName).sort()).toEqual(['alpha-run', 'gamma-run']);
    expect(ac.workers[0]!.otherJobs).toBe(1);

    const b = await keyB.fleet.list();
    expect(b.workers[0]!.jobs.map((j) => j.runName)).toEqual(['beta-secret-run']);
    expect(b.workers[0]!.otherJobs).toBe(2);
    expect(b.stalled).toEqual([]);
    expect(b.otherStalled).toBe(1);
    // the dead worker's stalled job is counted once (otherStalled), its resumed one under it
    expect(b.workers.find((w) => w.id === 'w-dead')!.otherJobs).toBe(1);
    // nothing of another team's runs leaks, anywhere in the answer
    const json = JSON.stringify(b);
    for (const id of [runs.a, runs.c, runs.stalled]) expect(json).not.toContain(id);
    expect(JSON.stringify(a)).not.toContain(runs.b);
    expect(JSON.stringify(a)).not.toContain('beta-secret-run');
  });

  it('shows a dead worker’s jobs as resumed where a live worker holds them, and stalled where none does', async () => {
    const a = await teamA.fleet.list();
    const dead = a.workers.find((w) => w.id === 'w-dead')!;
    expect(dead.jobs.map((j) => [j.runName, j.state, j.elsewhere?.host ?? null])).toEqual([
      ['alpha-run', 'resumed', 'host-w-live'],
      ['alpha-stalled', 'stalled', null],
    ]);
    expect(a.stalled.map((j) => [j.runName, j.state])).toEqual([['alpha-stalled', 'stalled']]);
    expect(a.otherStalled).toBe(0);
  });

  it('answers an empty fleet when the server has no queue', async () => {
    const none = await as({ apiKey: (await createTeamWithKey(t.db, 'beta', ['read'])).key }, null).fleet.list();
    expect(none).toMatchObject({ configured: false, workers: [] });
  });
});
