import Link from 'next/link';
import { TRPCError } from '@trpc/server';
import { api } from '../../../server/api';
import { Crumbs, Empty, ErrorBox, StatusBadge } from '../../../components/ui';
import { fmtAgo, fmtDuration, fmtNumber } from '../../../lib/format';
import { parseRunsView, runsViewHref, sortToggle, type RunsView } from '../../../lib/runs-url';

export const dynamic = 'force-dynamic';

const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'];

function SortHeader({ base, view, column, label, num }: { base: string; view: RunsView; column: string; label: string; num?: boolean }) {
  const active = view.sort === column;
  const arrow = active ? (view.dir === 'desc' ? ' ↓' : ' ↑') : '';
  return (
    <th className={num ? 'num' : undefined}>
      <a className={active ? 'active' : undefined} href={runsViewHref(base, view, sortToggle(view, column))}>
        {label}
        {arrow}
      </a>
    </th>
  );
}

export default async function RunsPage(props: {
  params: Promise<{ projectId: string }>;
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const { projectId } = await props.params;
  const view = parseRunsView(await props.searchParams);
  const base = `/projects/${projectId}`;
  const caller = api();
  let project;
  try {
    project = await caller.projects.get({ id: projectId });
  } catch (e) {
    if (e instanceof TRPCError && e.code === 'NOT_FOUND') {
      return <ErrorBox title={`Project ${projectId} does not exist`}>It may have been deleted, or the link is wrong. <Link href="/">All projects</Link></ErrorBox>;
    }
    throw e;
  }
  let page;
  try {
    page = await caller.runs.list({
      projectId,
      status: view.status.length ? (view.status as ('queued' | 'running' | 'succeeded' | 'failed' | 'canceled')[]) : undefined,
      method: view.method.length ? view.method : undefined,
      tags: view.tags.length ? view.tags : undefined,
      search: view.q || undefined,
      sortBy: view.sort,
      sortDir: view.dir,
      cursor: view.cursor ?? undefined,
      limit: 50,
    });
  } catch (e) {
    if (e instanceof TRPCError && e.code === 'BAD_REQUEST') {
      return (
        <>
          <Crumbs items={[{ label: project.name }]} />
          <ErrorBox title="This view's filters are not valid">
            {e.message} — <a href={base}>reset the filters</a>
          </ErrorBox>
        </>
      );
    }
    throw e;
  }
  const sweeps = await caller.sweeps.list({ projectId, limit: 20 });
  const metricCols = [
    ...new Set(
      page.items.flatMap((r) => Object.keys(r.summary).filter((k) => typeof r.summary[k] !== 'object' && !k.startsWith('progress/'))),
    ),
  ]
    .sort()
    .slice(0, 10);
  const now = Date.now();
  return (
    <>
      <Crumbs items={[{ label: project.name }]} />
      <h1>{project.name}</h1>
      <div className="sub">{project.description || 'Runs of this project'}</div>
      <div className="toolbar">
        <Link className="button primary" href={`/sweeps/new?project=${encodeURIComponent(project.name)}`}>
          Launch a sweep
        </Link>
        <Link className="button" href={`/compare?project=${project.id}`}>
          Compare methods
        </Link>
      </div>
      {sweeps.length ? (
        <>
          <h2>Sweeps</h2>
          <table className="data panel" data-testid="sweeps-table">
            <thead>
              <tr>
                <th>Status</th>
                <th>Sweep</th>
                <th className="num">Runs</th>
                <th>Progress</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {sweeps.map((s) => (
                <tr key={s.id}>
                  <td>
                    <StatusBadge status={s.status} />
                  </td>
                  <td>
                    <Link href={`/sweeps/${s.id}`}>{s.name}</Link>
                  </td>
                  <td className="num">{s.runs}</td>
                  <td>
                    {Object.entries(s.counts)
                      .map(([k, v]) => `${v} ${k}`)
                      .join(' · ')}
                  </td>
                  <td>{fmtAgo(s.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h2>Runs</h2>
        </>
      ) : null}
      <form className="filters" method="get" action={base}>
        <label>
          Status
          <select name="status" defaultValue={view.status[0] ?? ''}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Method
          <input name="method" placeholder="aft,dpo" defaultValue={view.method.join(',')} size={12} />
        </label>
        <label>
          Tags (all of)
          <input name="tags" placeholder="seed-1,baseline" defaultValue={view.tags.join(',')} size={16} />
        </label>
        <label>
          Name contains
          <input name="q" defaultValue={view.q} size={16} />
        </label>
        {view.sort !== 'createdAt' ? <input type="hidden" name="sort" value={view.sort} /> : null}
        {view.dir !== 'desc' ? <input type="hidden" name="dir" value={view.dir} /> : null}
        <button className="primary" type="submit">
          Filter
        </button>
        <a href={base}>Reset</a>
      </form>
      {page.items.length === 0 ? (
        <Empty>{view.cursor ? 'No more runs.' : 'No runs match these filters.'}</Empty>
      ) : (
        <div className="panel" style={{ padding: 0, overflowX: 'auto' }}>
          <table className="data" data-testid="runs-table">
            <thead>
              <tr>
                <SortHeader base={base} view={view} column="status" label="Status" />
                <SortHeader base={base} view={view} column="name" label="Name" />
                <SortHeader base={base} view={view} column="method" label="Method" />
                <th>Constraint</th>
                <th>Tags</th>
                <SortHeader base={base} view={view} column="createdAt" label="Created" />
                <th className="num">Runtime</th>
                {metricCols.map((k) => (
                  <SortHeader key={k} base={base} view={view} column={`summary.${k}`} label={k} num />
                ))}
              </tr>
            </thead>
            <tbody>
              {page.items.map((r) => {
                const start = r.startedAt ? new Date(r.startedAt).getTime() : null;
                const end = r.finishedAt ? new Date(r.finishedAt).getTime() : r.status === 'running' ? now : null;
                return (
                  <tr key={r.id}>
                    <td>
                      <StatusBadge status={r.status} />
                    </td>
                    <td>
                      <Link href={`/runs/${r.id}`}>{r.name}</Link>
                    </td>
                    <td>{r.method}</td>
                    <td>{r.constraint}</td>
                    <td>
                      {r.tags.map((t) => (
                        <a key={t} className="tag" href={runsViewHref(base, view, { tags: [t], cursor: null })}>
                          {t}
                        </a>
                      ))}
                    </td>
                    <td title={new Date(r.createdAt).toISOString()}>{fmtAgo(r.createdAt, now)}</td>
                    <td className="num">{start && end ? fmtDuration(end - start) : '—'}</td>
                    {metricCols.map((k) => (
                      <td key={k} className="num">
                        {fmtNumber(r.summary[k])}
                      </td>
                    ))}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
      <div className="pager">
        {view.cursor ? <a href={runsViewHref(base, view, { cursor: null })}>← First page</a> : null}
        {page.nextCursor ? <a href={runsViewHref(base, view, { cursor: page.nextCursor })}>Next page →</a> : null}
        <span>{page.items.length} runs on this page</span>
      </div>
    </>
  );
}
