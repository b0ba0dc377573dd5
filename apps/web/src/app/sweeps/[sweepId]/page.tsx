import { api, permissions } from '../../../server/api';
import { found } from '../../../server/found';
import { Crumbs, Missing } from '../../../components/ui';
import { SweepLive } from '../../../components/SweepLive';
import { fmtAgo } from '../../../lib/format';

export const dynamic = 'force-dynamic';

export default async function SweepPage(props: { params: Promise<{ sweepId: string }> }) {
  const { sweepId } = await props.params;
  const caller = await api();
  const [sweep, { canLaunch }] = await Promise.all([found(caller.sweeps.get({ id: sweepId })), permissions()]);
  if (!sweep) return <Missing what={`Sweep ${sweepId}`} />;
  return (
    <>
      <Crumbs items={[{ href: `/projects/${sweep.project.id}`, label: sweep.project.name }, { label: sweep.name }]} />
      <h1 data-testid="sweep-name">{sweep.name}</h1>
      <div className="sub">
        <span className="mono">{sweep.id}</span> · created {fmtAgo(sweep.createdAt)} · {sweep.runs.length} runs
      </div>
      <SweepLive initial={JSON.parse(JSON.stringify(sweep))} canCancel={canLaunch} />
    </>
  );
}
