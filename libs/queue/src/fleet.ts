/**
 * The fleet registry (docs/architecture.md, "Workers anywhere"): workers have no team key and no database, so they
 * register in the one place every host already reaches, Redis. Each worker keeps a record of itself (host, pools,
 * resources, jobs in hand) under a key that expires after three missed heartbeats, plus a last-known copy kept for
 * an hour so that a dead worker still shows, as gone, with the jobs it held. Which jobs a worker really holds is
 * read from BullMQ's job locks (their token starts with the holding BullMQ worker's id), not only from the record:
 * a record lags by up to a heartbeat, a lock does not.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';

/** How often a worker refreshes its record by default; its live key lasts `FLEET_TTL_BEATS` of these. */
export const FLEET_HEARTBEAT_MS = 5_000;
export const FLEET_TTL_BEATS = 3;
/** How long a worker that stopped heartbeating (killed, host down) is still listed, as gone. */
export const FLEET_KEEP_GONE_MS = 3_600_000;
/** The most workers one read lists (the newest beats), and the most active jobs it reads of each queue. */
export const FLEET_MAX_LISTED = 500;
export const FLEET_MAX_ACTIVE = 2_000;

const MAX_TEXT = 200;
const text = z.string().max(MAX_TEXT);

/**
 * Every string of a record cut to what the schema takes: one overlong field (a driver's adapter description, a long
 * host name) must not fail every beat and make a live worker look gone.
 */
function clampStrings<T>(v: T): T {
  if (typeof v === 'string') return (v.length > MAX_TEXT ? `${v.slice(0, MAX_TEXT - 1)}…` : v) as T;
  if (Array.isArray(v)) return v.map(clampStrings) as T;
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clampStrings(x)])) as T;
  return v;
}

export const fleetPool = z.object({
  kind: z.enum(['cpu', 'gpu']),
  queue: text,
  concurrency: z.number().int().min(0),
  /** The `AFT_BACKEND` its job processes get; null: automatic. */
  backend: text.nullable(),
  /** The GPU adapter its job processes found (reported by the first job that trained there), when known. */
  adapter: text.nullable(),
  /** The BullMQ worker's id: the prefix of the lock token of every job it holds. */
  bullId: text,
});

export const fleetJob = z.object({ runId: text, queue: text, since: z.number() });

/** A worker as it describes itself in Redis. Both sides parse it: a record written by another version is skipped. */
export const workerRecord = z.object({
  id: text,
  host: text,
  pid: z.number().int(),
  version: text,
  startedAt: z.number(),
  lastSeen: z.number(),
  heartbeatMs: z.number().int().min(1),
  pools: z.array(fleetPool).max(8),
  resources: z.object({
    cores: z.number().int().min(0),
    memoryMb: z.number().min(0),
    concurrency: z.number().int().min(0),
    gpus: z.number().int().min(0),
  }),
  jobs: z.array(fleetJob).max(256),
});
export type WorkerRecord = z.infer<typeof workerRecord>;
export type FleetJob = z.infer<typeof fleetJob>;

/** The registry's keys for one queue (an environment): tests with their own queue see only their own workers. */
export function fleetKeys(queue: string) {
  const base = `aft:fleet:${queue}`;
  return {
    index: `${base}:index`,
    live: (id: string) => `${base}:live:${id}`,
    last: (id: string) => `${base}:last:${id}`,
  };
}

/**
 * The writer side: refreshes a worker's record every `heartbeatMs` and at once when its jobs change (`beat`), and
 * removes it on a graceful stop. A failed write (Redis away) is retried by the next beat.
 */
export class FleetHeartbeat {
  private timer: NodeJS.Timeout | null = null;
  private readonly keys: ReturnType<typeof fleetKeys>;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly redis: Redis,
    queue: string,
    /** The record as of now (called at every beat). */
    private readonly snapshot: () => Promise<Omit<WorkerRecord, 'lastSeen'>> | Omit<WorkerRecord, 'lastSeen'>,
    private readonly onError: (e: Error) => void = () => undefined,
  ) {
    this.keys = fleetKeys(queue);
  }

  start(heartbeatMs: number): void {
    void this.beat();
    this.timer = setInterval(() => void this.beat(), heartbeatMs);
    this.timer.unref();
  }

  /** Writes the record now; beats never overlap (the next waits for the one in flight). */
  beat(): Promise<void> {
    this.writing = this.writing.then(() => this.write().catch((e: Error) => this.onError(e)));
    return this.writing;
  }

  private async write(): Promise<void> {
    const now = Date.now();
    const snap = await this.snapshot();
    const rec = workerRecord.parse(
      clampStrings({ ...snap, pools: snap.pools.slice(0, 8), jobs: snap.jobs.slice(0, 256), lastSeen: now }),
    );
    const json = JSON.stringify(rec);
    await this.redis
      .multi()
      .set(this.keys.live(rec.id), json, 'PX', rec.heartbeatMs * FLEET_TTL_BEATS)
      .set(this.keys.last(rec.id), json, 'PX', FLEET_KEEP_GONE_MS)
      .zadd(this.keys.index, now, rec.id)
      .zremrangebyscore(this.keys.index, '-inf', now - FLEET_KEEP_GONE_MS)
      .exec();
  }

  /**
   * Stops beating and takes the worker off the list (a graceful stop: it is not "gone", it left). Waits at most
   * `timeoutMs` for Redis: its client retries forever (maxRetriesPerRequest null), and a shutdown in a Redis outage
   * must still finish; the record then expires as gone.
   */
  async stop(id: string, timeoutMs = 2_000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    const leave = this.writing.then(() =>
      this.redis.multi().del(this.keys.live(id), this.keys.last(id)).zrem(this.keys.index, id).exec(),
    );
    try {
      await Promise.race([
        leave.then(
          () => undefined,
          (e: Error) => this.onError(e),
        ),
        timedOut,
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

export type WorkerStatus = 'alive' | 'stale' | 'gone';

export interface FleetWorker extends WorkerRecord {
  /** alive: beating; stale: its key still lives but beats are late (a starved event loop); gone: its key expired. */
  status: WorkerStatus;
}

/** A job BullMQ has active (taken by some worker), and who holds its lock now. */
export interface ActiveJob {
  runId: string;
  queue: string;
  /** When the current owner took it (ms). */
  since: number | null;
  /** The worker whose BullMQ worker holds the job's lock; null when the lock expired or its worker is unknown. */
  holder: string | null;
  /** The lock is still in Redis (a killed worker's lock outlives it by up to its lock duration). */
  locked: boolean;
}

export interface FleetSnapshot {
  workers: FleetWorker[];
  active: ActiveJob[];
}

/** Parses a stored record; anything unreadable (another version, a hand edit) is skipped. */
function parseRecord(json: string | null): WorkerRecord | null {
  if (!json) return null;
  try {
    const r = workerRecord.safeParse(JSON.parse(json));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

/**
 * The fleet of one queue as Redis has it now: each worker listed in the last hour with its status, and every job
 * active in `queues` with the worker that holds it. Jobs are not filtered here: who may see which run is the API's
 * decision (libs/api router/fleet.ts).
 */
export async function readFleet(
  redis: Redis,
  queue: string,
  queues: readonly Queue[],
  now = Date.now(),
): Promise<FleetSnapshot> {
  const keys = fleetKeys(queue);
  // the newest first, a bounded number: an index that grew (workers restarted in a loop) cannot make one read huge
  const ids = await redis.zrevrangebyscore(keys.index, '+inf', now - FLEET_KEEP_GONE_MS, 'LIMIT', 0, FLEET_MAX_LISTED);
  const [live, last] = ids.length
    ? await Promise.all([redis.mget(ids.map(keys.live)), redis.mget(ids.map(keys.last))])
    : [[], []];
  const workers: FleetWorker[] = [];
  ids.forEach((_, i) => {
    const alive = parseRecord(live[i] ?? null);
    const rec = alive ?? parseRecord(last[i] ?? null);
    if (!rec) return;
    const late = now - rec.lastSeen > 2 * rec.heartbeatMs;
    workers.push({ ...rec, status: !alive ? 'gone' : late ? 'stale' : 'alive' });
  });
  const byBullId = new Map<string, string>();
  for (const w of workers) if (w.status !== 'gone') for (const p of w.pools) byBullId.set(p.bullId, w.id);

  const active: ActiveJob[] = [];
  for (const q of queues) {
    // ids, locks and start times only: a job's data (its run token, its config) never leaves Redis for this
    const ids = (await q.getRanges(['active'], 0, FLEET_MAX_ACTIVE - 1)).filter(Boolean);
    if (!ids.length) continue;
    const pipe = redis.pipeline();
    for (const id of ids) pipe.get(`${q.toKey(id)}:lock`).hget(q.toKey(id), 'processedOn');
    const res = (await pipe.exec()) ?? [];
    ids.forEach((id, i) => {
      const lock = (res[2 * i]?.[1] as string | null | undefined) ?? null;
      const processedOn = Number(res[2 * i + 1]?.[1]);
      active.push({
        runId: id,
        queue: q.name,
        since: Number.isFinite(processedOn) && processedOn > 0 ? processedOn : null,
        holder: lock ? (byBullId.get(lock.split(':')[0]!) ?? null) : null,
        locked: lock !== null,
      });
    });
  }
  workers.sort((a, b) => statusRank(a.status) - statusRank(b.status) || a.host.localeCompare(b.host) || a.pid - b.pid);
  return { workers, active };
}

const statusRank = (s: WorkerStatus) => (s === 'alive' ? 0 : s === 'stale' ? 1 : 2);
