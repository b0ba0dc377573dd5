import Link from 'next/link';
import { api } from '../server/api';
import { Empty, ErrorBox } from '../components/ui';
import { fmtAgo } from '../lib/format';

export const dynamic = 'force-dynamic';

export default async function ProjectsPage() {
  const caller = await api();
  let projects;
  try {
    projects = await caller.projects.list();
  } catch (e) {
    return <ErrorBox title="Could not load projects">{(e as Error).message}</ErrorBox>;
  }
  return (
    <>
      <h1>Projects</h1>
      <div className="sub">Every run streams its metrics, samples and checkpoints here.</div>
      {projects.length === 0 ? (
        <Empty>
          No projects yet. Log a run with the SDK — <code>init(&#123; project: &apos;gsm8k&apos; &#125;)</code> — and it
          appears here.
        </Empty>
      ) : (
        <div className="grid cards">
          {projects.map((p) => (
            <Link key={p.id} href={`/projects/${p.id}`} className="card" data-testid="project-card">
              <div className="name">{p.name}</div>
              {p.description ? <div className="muted">{p.description}</div> : null}
              <div className="meta">
                {p.runs} runs{p.running ? ` · ${p.running} running` : ''} · active{' '}
                {fmtAgo(p.lastActivity ?? p.createdAt)}
              </div>
            </Link>
          ))}
        </div>
      )}
    </>
  );
}
