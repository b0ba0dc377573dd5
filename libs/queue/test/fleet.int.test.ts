/**
 * The fleet registry on real Redis (libs/queue/src/fleet.ts): a record is written at once and refreshed, expires
 * after three missed beats (then listed as gone, from its last-known copy), late beats read as stale, a graceful
 * stop takes the worker off the list, and a job's holder is read from its BullMQ lock, not from the record.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { Worker } from 'bullmq';
import {
  createRedis,
  dropTestQueues,
  FleetHeartbeat,
  fleetKeys,
  JobProducer,
  readFleet,
  testQueueName,
  type WorkerRecord,
} from '../src';

const redis = createRedis('redis://127.0.0.1:6379', 'worker');
const producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), testQueueName());
const queue = producer.queueName;
const workers: Worker[] = [];

afterAll(async () => {
  await Promise.all(workers.map((w) => w.close(true)));
  await dropTestQueues(producer);
  const keys = await redis.keys(`aft:fleet:${queue}:*`);
  if (keys.length) await redis.del(keys);
  redis.disconnect();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function record(id: string, heartbeatMs: number, bullId = `bull-${id}`): Omit<WorkerRecord, 'lastSeen'> {
  return {
    id,
    host: 'test-host',
    pid: 4242,
    version: '0.1.0',
    startedAt: Date.now(),
    heartbeatMs,
    pools: [{ kind: 'cpu', queue, concurrency: 1, backend: 'wasm', adapter: null, bullId }],
    resources: { cores: 2, memoryMb: 1024, concurrency: 1, gpus: 0 },
    jobs: [],
  };
}

describe('fleet registry', () => {
  it('writes a record at once, and a killed worker (no more beats) expires to gone after three beats', async () => {
    const hb = new FleetHeartbeat(redis, queue, () => record('w-dies', 200));
    hb.start(200);
    await hb.beat();
    const ttl = await redis.pttl(fleetKeys(queue).live('w-dies'));
    expect(ttl).toBeGreaterThan(300);
    expect(ttl).toBeLessThanOrEqual(600);
    expect((await producer.fleet()).workers.map((w) => [w.id, w.status])).toEqual([['w-dies', 'alive']]);

    // a kill -9: the timer stops, nothing is removed
    (hb as unknown as { timer: NodeJS.Timeout }).timer.close();
    await sleep(900);
    expect(await redis.exists(fleetKeys(queue).live('w-dies'))).toBe(0);
    const gone = (await producer.fleet()).workers.find((w) => w.id === 'w-dies');
    expect(gone?.status).toBe('gone');
    expect(Date.now() - gone!.lastSeen).toBeGreaterThanOrEqual(600);
  });

  it('reads late beats as stale while the key lives, and a graceful stop removes the worker', async () => {
    const hb = new FleetHeartbeat(redis, queue, () => record('w-stops', 1_000));
    await hb.beat();
    const later = Date.now() + 2_500;
    expect((await readFleet(redis, queue, [], later)).workers.find((w) => w.id === 'w-stops')?.status).toBe('stale');
    await hb.stop('w-stops');
    expect((await producer.fleet()).workers.map((w) => w.id)).not.toContain('w-stops');
  });

  it('names the holder of an active job from its lock', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const w = new Worker(queue, () => held, { connection: redis, concurrency: 1 });
    workers.push(w);
    const hb = new FleetHeartbeat(redis, queue, () => record('w-holds', 1_000, w.id));
    await hb.beat();
    await producer.enqueueRun({ kind: 'vft', runId: 'run-held', runToken: 'aftrun_x' });
    let snap = await producer.fleet();
    for (let i = 0; i < 50 && !snap.active.length; i++) {
      await sleep(100);
      snap = await producer.fleet();
    }
    expect(snap.active).toEqual([
      { runId: 'run-held', queue, since: expect.any(Number), holder: 'w-holds', locked: true },
    ]);
    // its record gone (dead) while the lock lives: the job has no live holder, though still locked
    await redis.del(fleetKeys(queue).live('w-holds'));
    snap = await producer.fleet();
    expect(snap.active[0]).toMatchObject({ holder: null, locked: true });
    release();
    await hb.stop('w-holds');
  });

  it('cuts an overlong field instead of failing the beat: a 5,000-character adapter still beats and lists', async () => {
    const errors: Error[] = [];
    const rec = record('w-long', 1_000);
    const long = { ...rec, pools: [{ ...rec.pools[0]!, kind: 'gpu' as const, adapter: 'x'.repeat(5_000) }] };
    const hb = new FleetHeartbeat(
      redis,
      queue,
      () => long,
      (e) => errors.push(e),
    );
    await hb.beat();
    expect(errors).toEqual([]);
    const w = (await producer.fleet()).workers.find((x) => x.id === 'w-long');
    expect(w?.status).toBe('alive');
    expect(w!.pools[0]!.adapter).toHaveLength(200);
    await hb.stop('w-long');
  });

  it('lists at most the newest 500 workers', async () => {
    const keys = fleetKeys(queue);
    const now = Date.now();
    const multi = redis.multi();
    for (let i = 0; i < 520; i++) {
      const id = `w-many-${i}`;
      const json = JSON.stringify({ ...record(id, 60_000), lastSeen: now - 520 + i });
      multi.set(keys.live(id), json, 'PX', 60_000).zadd(keys.index, now - 520 + i, id);
    }
    await multi.exec();
    const listed = (await producer.fleet()).workers.map((w) => w.id);
    expect(listed.filter((id) => id.startsWith('w-many-'))).toHaveLength(500);
    expect(listed).toContain('w-many-519');
    expect(listed).not.toContain('w-many-0');
    const ids = Array.from({ length: 520 }, (_, i) => `w-many-${i}`);
    await redis
      .multi()
      .del(ids.map(keys.live))
      .zrem(keys.index, ...ids)
      .exec();
  });

  it('reads active jobs by id and lock, never loading their data (run tokens) into the reader', async () => {
    const q = producer.runs;
    const getActive = q.getActive.bind(q);
    q.getActive = () => Promise.reject(new Error('job data was loaded'));
    try {
      await expect(producer.fleet()).resolves.toMatchObject({ active: expect.any(Array) });
    } finally {
      q.getActive = getActive;
    }
  });

  it('a stop in a Redis outage gives up after its timeout instead of hanging the shutdown', async () => {
    const down = createRedis('redis://127.0.0.1:1', 'worker');
    down.on('error', () => undefined);
    try {
      const hb = new FleetHeartbeat(down, queue, () => record('w-outage', 1_000));
      void hb.beat(); // a write in flight that never answers
      const t0 = Date.now();
      await hb.stop('w-outage', 300);
      expect(Date.now() - t0).toBeLessThan(2_000);
    } finally {
      down.disconnect();
    }
  });

  it('skips a record it cannot read', async () => {
    const keys = fleetKeys(queue);
    await redis.zadd(keys.index, Date.now(), 'w-garbled');
    await redis.set(keys.live('w-garbled'), '{"id":"w-garbled"', 'PX', 5_000);
    expect((await producer.fleet()).workers.map((w) => w.id)).not.toContain('w-garbled');
  });
});
