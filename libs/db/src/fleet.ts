/**
 * The runs the Workers page may name (docs/architecture.md, "Workers anywhere"): workers are shared by every team,
 * but a run id in a worker's hands is only shown to members of the run's team. Ids of other teams' runs, and ids
 * of no run at all, come back as nothing: the caller counts them, it cannot tell them apart.
 */
import type { Db } from './client';

export interface FleetRun {
  id: string;
  name: string;
  status: string;
  teamId: string;
  projectId: string;
  /** The run's last report (any write through the API): how long a stalled job's run has been silent. */
  heartbeatAt: Date | null;
}

/** Those of `runIds` that belong to one of `teamIds`. */
export async function fleetRunsInTeams(
  db: Pick<Db, 'prisma'>,
  runIds: readonly string[],
  teamIds: readonly string[],
): Promise<FleetRun[]> {
  if (!runIds.length || !teamIds.length) return [];
  const rows = await db.prisma.run.findMany({
    where: { id: { in: [...new Set(runIds)] }, project: { teamId: { in: [...teamIds] } } },
    select: {
      id: true,
      name: true,
      status: true,
      projectId: true,
      heartbeatAt: true,
      project: { select: { teamId: true } },
    },
  });
  return rows.map(({ project, ...r }) => ({ ...r, status: String(r.status), teamId: project.teamId }));
}
