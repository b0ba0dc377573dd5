/** Projects: a team's named groups of runs and sweeps (a launch also creates its project by name, launch.ts). */
import type { Db } from './client';

const projectSelect = { id: true, name: true, description: true, createdAt: true } as const;

/** Creates a project of the team; null when the team already has one by that name. */
export async function createProject(
  db: Pick<Db, 'prisma'>,
  project: { teamId: string; name: string; description: string },
) {
  const exists = await db.prisma.project.findUnique({
    where: { teamId_name: { teamId: project.teamId, name: project.name } },
    select: { id: true },
  });
  if (exists) return null;
  return db.prisma.project.create({ data: project, select: projectSelect });
}

/** A project with its run counts and last activity, as the projects list shows it. */
export interface ProjectActivity {
  id: string;
  name: string;
  description: string;
  createdAt: Date;
  runs: number;
  running: number;
  lastActivity: Date | null;
}

/** The team's projects (up to 500) with their run counts and last activity, most recently active first. */
export async function listProjectsWithActivity(db: Pick<Db, 'pool'>, teamId: string): Promise<ProjectActivity[]> {
  const res = await db.pool.query<ProjectActivity>(
    `SELECT p.id, p.name, p.description, p.created_at AS "createdAt",
            count(r.id)::int AS runs, count(r.id) FILTER (WHERE r.status = 'running')::int AS running,
            max(r.updated_at) AS "lastActivity"
     FROM project p LEFT JOIN run r ON r.project_id = p.id
     WHERE p.team_id = $1
     GROUP BY p.id ORDER BY COALESCE(max(r.updated_at), p.created_at) DESC LIMIT 500`,
    [teamId],
  );
  return res.rows;
}

/** One of the team's projects, or null when it has none by that id. */
export function findProject(db: Pick<Db, 'prisma'>, teamId: string, projectId: string) {
  return db.prisma.project.findFirst({ where: { id: projectId, teamId }, select: projectSelect });
}

/** The team a project belongs to, or null when there is no such project. */
export async function projectTeamId(db: Pick<Db, 'pool'>, projectId: string): Promise<string | null> {
  const res = await db.pool.query<{ team_id: string }>('SELECT team_id FROM project WHERE id = $1', [projectId]);
  return res.rows[0]?.team_id ?? null;
}
