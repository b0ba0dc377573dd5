import Link from 'next/link';
import { Suspense } from 'react';
import { api, permissions } from '../../../server/api';
import { found } from '../../../server/found';
import { Crumbs, Missing } from '../../../components/ui';
import { LiveRun, type LiveState } from '../../../components/LiveRun';
import { SamplesBrowser } from '../../../components/SamplesBrowser';
import { DeleteRun } from '../../../components/DeleteRun';
import { flatten, fmtAgo, fmtDuration } from '../../../lib/format';

export const dynamic = 'force-dynamic';

export default async function RunPage(props: { params: Promise<{ runId: string }> }) {
  const { runId } = await props.params;
  const caller = await api();
  const run = await found(caller.runs.get({ id: runId }));
  if (!run) return <Missing what={`Run ${runId}`} />;
  const [keys, artifacts, events, { canLaunch }] = await Promise.all([
    caller.metrics.keys({ runIds: [runId] }),
    caller.artifacts.list({ runId }),
    caller.events.list({ runId }),
    permissions(),
  ]);
  const initial: LiveState = {
    status: run.status,
    summary: run.summary,
    error: run.error,
    writeSeq: run.writeSeq,
    metrics: keys.map((k) => ({ key: k.key, count: k.count, lastStep: k.lastStep, lastValue: k.lastValue })),
  };
  const config = flatten(run.config);
  const degraded = events.find((e) => e.kind === 'degradation-detected');
  const started = run.startedAt?.getTime();
  const ended = run.finishedAt?.getTime() ?? (run.status === 'running' ? Date.now() : undefined);
  return (
    <>
      <Crumbs items={[{ href: `/projects/${run.project.id}`, label: run.project.name }, { label: run.name }]} />
      <h1 data-testid="run-name">{run.name}</h1>
      <div className="sub">
        <span className="mono">{run.id}</span> · {run.method}
        {run.constraint !== 'none' ? ` (${run.constraint})` : ''} · created {fmtAgo(run.createdAt)}
        {started && ended ? ` · ran ${fmtDuration(ended - started)}` : ''}
        {run.backend ? ` · backend ${run.backend}` : ''}
        {run.parent ? (
          <>
            {' '}
            · parent <Link href={`/runs/${run.parent.id}`}>{run.parent.name}</Link>
          </>
        ) : null}
        {run.tags.length ? (
          <span style={{ marginLeft: 8 }}>
            {run.tags.map((t) => (
              <span key={t} className="tag">
                {t}
              </span>
            ))}
          </span>
        ) : null}
        {canLaunch && run.status !== 'running' && run.status !== 'queued' ? (
          <span style={{ marginLeft: 12 }}>
            <DeleteRun runId={run.id} name={run.name} projectId={run.project.id} />
          </span>
        ) : null}
      </div>
      {degraded ? (
        <div className="warnbox" data-testid="degraded-banner">
          Degraded at step {degraded.step ?? '?'} — <Link href={`/runs/${run.id}/case-study`}>open the case study</Link>
        </div>
      ) : null}
      <Suspense fallback={<div className="skeleton" />}>
        <LiveRun
          runId={run.id}
          initial={initial}
          markers={degraded?.step != null ? [{ step: degraded.step, label: `onset · step ${degraded.step}` }] : []}
          canCancel={canLaunch}
        />
      </Suspense>
      <h2>Samples</h2>
      <SamplesBrowser runId={run.id} />
      <div className="two">
        <div>
          <h2>Config</h2>
          {config.length === 0 ? (
            <div className="muted">No config.</div>
          ) : (
            <dl className="kv panel" data-testid="config">
              {config.map(([k, v]) => (
                <div key={k} style={{ display: 'contents' }}>
                  <dt>{k}</dt>
                  <dd>{JSON.stringify(v)}</dd>
                </div>
              ))}
            </dl>
          )}
          {run.notes ? (
            <>
              <h2>Notes</h2>
              <div className="panel" style={{ whiteSpace: 'pre-wrap' }}>
                {run.notes}
              </div>
            </>
          ) : null}
        </div>
        <div>
          <h2>Artifacts</h2>
          {artifacts.length === 0 ? (
            <div className="muted">No artifacts.</div>
          ) : (
            <table className="data panel">
              <thead>
                <tr>
                  <th>Kind</th>
                  <th>Name</th>
                  <th className="num">Step</th>
                  <th className="num">Bytes</th>
                  <th>URI</th>
                </tr>
              </thead>
              <tbody>
                {artifacts.map((a) => (
                  <tr key={a.id}>
                    <td>{a.kind}</td>
                    <td>{a.name}</td>
                    <td className="num">{a.step ?? '—'}</td>
                    <td className="num">{a.bytes?.toLocaleString('en-US') ?? '—'}</td>
                    <td className="mono">{a.uri}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h2>Events</h2>
          {events.length === 0 ? (
            <div className="muted">No events.</div>
          ) : (
            <table className="data panel">
              <thead>
                <tr>
                  <th>Kind</th>
                  <th className="num">Step</th>
                  <th>Details</th>
                </tr>
              </thead>
              <tbody>
                {events.map((e) => (
                  <tr key={e.id}>
                    <td>{e.kind}</td>
                    <td className="num">{e.step ?? '—'}</td>
                    <td className="mono">{JSON.stringify(e.details)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {run.children.length ? (
            <>
              <h2>Child runs</h2>
              <ul>
                {run.children.map((c) => (
                  <li key={c.id}>
                    <Link href={`/runs/${c.id}`}>{c.name}</Link> — {c.method}/{c.constraint} ({c.status})
                  </li>
                ))}
              </ul>
            </>
          ) : null}
        </div>
      </div>
    </>
  );
}
