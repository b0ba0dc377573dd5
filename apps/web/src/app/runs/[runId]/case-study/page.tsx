import Link from 'next/link';
import { api, permissions } from '../../../../server/api';
import { found } from '../../../../server/found';
import { Crumbs, Empty, ErrorBox, Missing } from '../../../../components/ui';
import { CaseStudy } from '../../../../components/CaseStudy';
import { degradationDetails } from '../../../../lib/degradation';
import { recordOf } from '../../../../lib/json';

export const dynamic = 'force-dynamic';

export default async function CaseStudyPage(props: { params: Promise<{ runId: string }> }) {
  const { runId } = await props.params;
  const caller = await api();
  const run = await found(caller.runs.get({ id: runId }));
  if (!run) return <Missing what={`Run ${runId}`} />;
  const [events, keys, artifacts, { canLaunch }] = await Promise.all([
    caller.events.list({ runId, kind: 'degradation-detected' }),
    caller.metrics.keys({ runIds: [runId] }),
    caller.artifacts.list({ runId }),
    permissions(),
  ]);
  const lastGood = artifacts.find((a) => a.kind === 'checkpoint' && a.name === 'last-good');
  const event = events[0];
  const crumbs = [
    { href: `/projects/${run.project.id}`, label: run.project.name },
    { href: `/runs/${run.id}`, label: run.name },
    { label: 'case study' },
  ];
  if (!event) {
    return (
      <>
        <Crumbs items={crumbs} />
        <h1>{run.name}</h1>
        <Empty>
          This run has not degraded: the detector found every evaluation within its limits.{' '}
          <Link href={`/runs/${run.id}`}>Back to the run</Link>
        </Empty>
      </>
    );
  }
  const details = degradationDetails.safeParse(event.details);
  if (!details.success) {
    return (
      <>
        <Crumbs items={crumbs} />
        <h1>{run.name}</h1>
        <ErrorBox title="This run's degradation event cannot be read">{details.error.message}</ErrorBox>
      </>
    );
  }
  return (
    <>
      <Crumbs items={crumbs} />
      <h1 data-testid="case-study-title">Case study · {run.name}</h1>
      <div className="sub">
        {run.method} with constraint <b>{run.constraint}</b> degraded at step{' '}
        <b data-testid="onset-step">{event.step ?? '?'}</b>
        {run.parent ? (
          <>
            {' '}
            · parent <Link href={`/runs/${run.parent.id}`}>{run.parent.name}</Link>
          </>
        ) : null}{' '}
        · <Link href={`/runs/${run.id}`}>run page</Link>
      </div>
      <CaseStudy
        run={{
          id: run.id,
          name: run.name,
          method: run.method,
          constraint: run.constraint,
          config: recordOf(run.config),
          parentRunId: run.parent?.id ?? null,
          projectName: run.project.name,
        }}
        onset={event.step ?? 0}
        details={details.data}
        metricKeys={keys.map((k) => k.key)}
        lastGoodStep={lastGood?.step ?? null}
        canFork={canLaunch}
      />
    </>
  );
}
