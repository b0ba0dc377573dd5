/**
 * Reads of sweeps: whether one is the team's, one with its runs (the status grid), the team's list, and the status
 * a sweep has, which follows from its runs'. Sweeps are written with their runs by `createQueuedRuns` (launch.ts).
 */
import type { Db } from './client';

export type SweepStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled';

/** A sweep's status follows from its runs'. */
export function sweepStatus(counts: Partial<Record<SweepStatus, number>>): SweepStatus {
  const n = (s: SweepStatus) => counts[s] ?? 0;
  if (n('running')) return 'running';
  if (n('queued')) return n('succeeded') + n('failed') + n('canceled') ? 'running' : 'queued';
  if (n('failed')) return 'failed';
  if (n('succeeded')) return 'succeeded';
  return 'canceled';
}

/** How many of `runs` have each status: what `sweepStatus` reads. */
export function countStatuses(runs: readonly { status: string }[]): Partial<Record<SweepStatus, number>> {
  const counts: Partial<Record<SweepStatus, number>> = {};
  for (const r of runs) counts[r.status as SweepStatus] = (counts[r.status as SweepStatus] ?? 0) + 1;
  return counts;
}

/** Whether `sweepId` is a sweep of the team (another team's sweep is as missing as one that never was). */
export async function sweepExists(db: Db, teamId: string, sweepId: string): Promise<boolean> {
  const sweep = await db.prisma.sweep.findFirst({ where: { id: sweepId, project: { teamId } }, select: { id: true } });
  return sweep !== null;
}

const PARENT_FIELDS = { id: true, name: true, status: true } as const;

/**
 * A sweep of the team with every run's status, config, summary and lineage, parents first and then in the order the
 * sweep planned them; each run's `events` holds its `degradation-detected` event, if any. Null when not the team's.
 */
export function findSweepWithRuns(db: Db, teamId: string, sweepId: string) {
  return db.prisma.sweep.findFirst({
    where: { id: sweepId, project: { teamId } },
    select: {
      id: true,
      name: true,
      spec: true,
      createdAt: true,
      project: { select: { id: true, name: true } },
      runs: {
        orderBy: [{ num: 'asc' }],
        select: {
          id: true,
          name: true,
          method: true,
          constraint: true,
          config: true,
          seed: true,
          status: true,
          error: true,
          summary: true,
          parentRunId: true,
          startedAt: true,
          finishedAt: true,
          heartbeatAt: true,
          parent: { select: PARENT_FIELDS },
          events: { where: { kind: 'degradation-detected' }, select: { step: true }, take: 1 },
        },
      },
    },
  });
}

/** The team's sweeps (of one project, if given), newest first, each with its runs' statuses. */
export function listSweeps(db: Db, teamId: string, opts: { projectId?: string | undefined; limit: number }) {
  return db.prisma.sweep.findMany({
    where: { project: { teamId }, ...(opts.projectId ? { projectId: opts.projectId } : {}) },
    orderBy: { createdAt: 'desc' },
    take: opts.limit,
    select: { id: true, name: true, createdAt: true, projectId: true, runs: { select: { status: true } } },
  });
}
