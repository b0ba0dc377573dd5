import { api } from '../../server/api';
import { Crumbs } from '../../components/ui';
import { WorkersTable } from '../../components/WorkersTable';

export const dynamic = 'force-dynamic';

/** The fleet (docs/architecture.md, "Workers anywhere"): every worker of this environment, live. */
export default async function WorkersPage() {
  const fleet = await (await api()).fleet.list();
  return (
    <>
      <Crumbs items={[{ label: 'Workers' }]} />
      <h1>Workers</h1>
      <div className="sub">
        Workers are shared by every team. Runs in their hands are named when they belong to one of your teams.
      </div>
      <WorkersTable initial={fleet} />
    </>
  );
}
