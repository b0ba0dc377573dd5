import Link from 'next/link';
import { TRPCError } from '@trpc/server';
import { api } from '../../../server/api';
import { Crumbs, ErrorBox } from '../../../components/ui';
import { SweepLive } from '../../../components/SweepLive';
import { fmtAgo } from '../../../lib/format';

export const dynamic = 'force-dynamic';

export default async function SweepPage(props: { params: Promise<{ sweepId: string }> }) {
  const { sweepId } = await props.params;
  let sweep;
  try {
    sweep = await api().sweeps.get({ id: sweepId });
  } catch (e) {
    if (e instanceof TRPCError && (e.code === 'NOT_FOUND' || e.code === 'BAD_REQUEST')) {
      return (
        <ErrorBox title={`Sweep ${sweepId} does not exist`}>
          It may have been deleted, or the link is wrong. <Link href="/">All projects</Link>
        </ErrorBox>
      );
    }
    throw e;
  }
  return (
    <>
      <Crumbs items={[{ href: `/projects/${sweep.project.id}`, label: sweep.project.name }, { label: sweep.name }]} />
      <h1 data-testid="sweep-name">{sweep.name}</h1>
      <div className="sub">
        <span className="mono">{sweep.id}</span> · created {fmtAgo(sweep.createdAt)} · {sweep.runs.length} runs
      </div>
      <SweepLive initial={JSON.parse(JSON.stringify(sweep))} />
    </>
  );
}
