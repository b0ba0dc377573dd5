import { api } from '../../../server/api';
import { Crumbs, ErrorBox } from '../../../components/ui';
import { SweepForm } from '../../../components/SweepForm';

export const dynamic = 'force-dynamic';

export default async function NewSweepPage(props: { searchParams: Promise<{ project?: string }> }) {
  const { project } = await props.searchParams;
  const caller = await api();
  let projects;
  try {
    projects = await caller.projects.list();
  } catch (e) {
    return <ErrorBox title="Could not load projects">{(e as Error).message}</ErrorBox>;
  }
  return (
    <>
      <Crumbs items={[{ label: 'New sweep' }]} />
      <h1>Launch a sweep</h1>
      <div className="sub">
        A VFT parent per seed and preset, one labelled sample set per sampling setting, then every alignment run from
        it. Checked as you type; the count below is what will be created.
      </div>
      <SweepForm projects={projects.map((p) => p.name)} initialProject={project} />
    </>
  );
}
