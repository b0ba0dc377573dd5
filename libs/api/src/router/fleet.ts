/**
 * The Workers page's data (docs/architecture.md, "Workers anywhere"): the fleet registry in Redis (libs/queue
 * fleet.ts) joined to the runs the viewer may see. Workers are shared infrastructure, so every member sees every
 * worker; a run in a worker's hands is named only to members of the run's team, and counted for anyone else.
 */
import { fleetRunsInTeams, listUserTeams, type FleetRun } from '@aft/db';
import type { ActiveJob, FleetSnapshot, FleetWorker, WorkerStatus } from '@aft/queue';
import { readProcedure } from '../trpc';

/**
 * A job as the page shows it. running: its worker holds the lock; stalled: active in BullMQ, but its worker is gone
 * or its lock expired (it waits for a live worker's stall check to take it back); resumed: a job a gone worker held,
 * now running on `elsewhere`; released: a job a gone worker held that is no longer active (back in the queue, or
 * finished).
 */
export type FleetJobState = 'running' | 'stalled' | 'resumed' | 'released';

export interface FleetJobView {
  runId: string;
  runName: string;
  projectId: string;
  runStatus: string;
  queue: string;
  since: number | null;
  state: FleetJobState;
  elsewhere: { workerId: string; host: string; pid: number } | null;
  /** The run's last report to the API (ms): a stalled job's run has been silent since. */
  runHeartbeatAt: number | null;
}

export interface FleetWorkerView {
  id: string;
  host: string;
  pid: number;
  version: string;
  status: WorkerStatus;
  startedAt: number;
  lastSeen: number;
  heartbeatMs: number;
  pools: { kind: 'cpu' | 'gpu'; queue: string; concurrency: number; backend: string | null; adapter: string | null }[];
  resources: FleetWorker['resources'];
  /** Jobs in hand of runs in the viewer's teams. */
  jobs: FleetJobView[];
  /** Jobs in hand of runs the viewer may not see: "busy with N other jobs" (a gone worker's stalled ones aside). */
  otherJobs: number;
}

export interface FleetView {
  /** False when this server has no Redis (REDIS_URL unset): there is no fleet to show. */
  configured: boolean;
  /** The server's clock when read (ms): "last seen 3 s ago" is measured against it, not the browser's. */
  now: number;
  workers: FleetWorkerView[];
  /**
   * Active jobs no live worker holds, of the viewer's runs, and how many of other teams' (a gone worker's stalled
   * jobs of other teams are counted here only, not in its `otherJobs`).
   */
  stalled: FleetJobView[];
  otherStalled: number;
}

/** Joins a registry snapshot to the runs the viewer may see; pure but for `runs`, so it is tested on its own. */
export function fleetView(snap: FleetSnapshot, runs: readonly FleetRun[], now: number): FleetView {
  const visible = new Map(runs.map((r) => [r.id, r]));
  const byId = new Map(snap.workers.map((w) => [w.id, w]));
  const active = new Map(snap.active.map((j) => [j.runId, j]));
  const view = (runId: string, queue: string, since: number | null, state: FleetJobState): FleetJobView | null => {
    const r = visible.get(runId);
    if (!r) return null;
    const holder = active.get(runId)?.holder;
    const w = holder ? byId.get(holder) : undefined;
    return {
      runId,
      runName: r.name,
      projectId: r.projectId,
      runStatus: r.status,
      queue,
      since,
      state,
      elsewhere: state === 'resumed' && w ? { workerId: w.id, host: w.host, pid: w.pid } : null,
      runHeartbeatAt: r.heartbeatAt?.getTime() ?? null,
    };
  };
  const split = (all: { runId: string; queue: string; since: number | null; state: FleetJobState }[]) => {
    const shown = all.map((j) => view(j.runId, j.queue, j.since, j.state)).filter((j) => j !== null);
    return { shown, others: all.length - shown.length };
  };
  const stateOfGone = (j: ActiveJob | undefined, self: string): FleetJobState =>
    !j ? 'released' : j.holder && j.holder !== self ? 'resumed' : 'stalled';

  const workers = snap.workers.map((w): FleetWorkerView => {
    // a live worker's jobs are the locks it holds (the record lags a heartbeat); a gone one's, what it last said
    const held =
      w.status === 'gone'
        ? w.jobs.map((j) => ({ ...j, state: stateOfGone(active.get(j.runId), w.id) }))
        : snap.active
            .filter((j) => j.holder === w.id)
            .map((j) => ({ runId: j.runId, queue: j.queue, since: j.since, state: 'running' as const }));
    const { shown } = split(held);
    // another team's job a gone worker left stalled (no holder) is counted once, in the top-level `otherStalled`
    const others = held.filter((j) => !visible.has(j.runId) && j.state !== 'stalled').length;
    return {
      id: w.id,
      host: w.host,
      pid: w.pid,
      version: w.version,
      status: w.status,
      startedAt: w.startedAt,
      lastSeen: w.lastSeen,
      heartbeatMs: w.heartbeatMs,
      pools: w.pools.map(({ bullId: _, ...p }) => p),
      resources: w.resources,
      jobs: shown,
      otherJobs: others,
    };
  });
  const orphans = snap.active
    .filter((j) => !j.holder)
    .map((j) => ({ runId: j.runId, queue: j.queue, since: j.since, state: 'stalled' as const }));
  const { shown, others } = split(orphans);
  return { configured: true, now, workers, stalled: shown, otherStalled: others };
}

export const fleetRouter = {
  /** Every worker of this environment and the jobs in its hands (the viewer's teams' runs by name, others counted). */
  list: readProcedure.query(async ({ ctx }): Promise<FleetView> => {
    const now = Date.now();
    if (!ctx.jobs) return { configured: false, now, workers: [], stalled: [], otherStalled: 0 };
    const snap = await ctx.jobs.fleet();
    // a signed-in person sees the runs of every team they are in; an API key, its own team's
    const teamIds =
      ctx.actor.via === 'user' && ctx.actor.userId
        ? (await listUserTeams(ctx.db, ctx.actor.userId)).map((t) => t.id)
        : [ctx.actor.teamId];
    const runIds = [...snap.active.map((j) => j.runId), ...snap.workers.flatMap((w) => w.jobs.map((j) => j.runId))];
    return fleetView(snap, await fleetRunsInTeams(ctx.db, runIds, teamIds), now);
  }),
};
