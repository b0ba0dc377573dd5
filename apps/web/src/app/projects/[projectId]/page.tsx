import Link from 'next/link';
import { TRPCError } from '@trpc/server';
import { runListInput } from '@aft/api';
import { PROGRESS_PREFIX } from '@aft/contracts';
import { api, permissions } from '../../../server/api';
import { found } from '../../../server/found';
import { Crumbs, Empty, ErrorBox, Missing, StatusBadge } from '../../../components/ui';
import { fmtAgo } from '../../../lib/format';
import { parseFilter, parseRunsView, type ValueFilter } from '../../../lib/runs-url';
import { RunsTable, type RunsQuery } from '../../../components/RunsTable';
import { tableRow } from '../../../components/runs-columns';
import { SavedViews } from '../../../components/SavedViews';

export const dynamic = 'force-dynamic';

const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'];

export default async function RunsPage(props: {
  params: Promise<{ projectId: string }>;
  searchParams: Promise<Record<string, string | string[] | undefined>>;
}) {
  const { projectId } = await props.params;
  const view = parseRunsView(await props.searchParams);
  const base = `/projects/${projectId}`;
  const caller = await api();
  const [project, { canLaunch }] = await Promise.all([found(caller.projects.get({ id: projectId })), permissions()]);
  if (!project) return <Missing what={`Project ${projectId}`} />;
  const parsed = view.filters.map(parseFilter);
  const bad = parsed.filter((f): f is string => typeof f === 'string');
  const filters = parsed.filter((f): f is ValueFilter => typeof f !== 'string');
  const input = {
    projectId,
    status: view.status.length ? view.status : undefined,
    method: view.method.length ? view.method : undefined,
    constraint: view.constraint.length ? view.constraint : undefined,
    tags: view.tags.length ? view.tags : undefined,
    search: view.q || undefined,
    config: filters.filter((f) => f.on === 'config').map(({ path, op, value }) => ({ path, op, value })),
    summary: filters.filter((f) => f.on === 'summary').map(({ path, op, value }) => ({ path, op, value })),
    sortBy: view.sort,
    sortDir: view.dir,
    cursor: view.cursor ?? undefined,
    limit: 200,
  };
  let query: RunsQuery;
  let page;
  // read alongside the runs (awaited below; on a refused view it is dropped, so it must not reject unhandled)
  const sweepsRead = caller.sweeps.list({ projectId, limit: 20 });
  sweepsRead.catch(() => undefined);
  try {
    if (bad.length) throw new TRPCError({ code: 'BAD_REQUEST', message: bad.join('; ') });
    // the URL is anyone's to edit: checked by runs.list's own schema, and refused as the call itself refuses
    const parsed = runListInput.safeParse(input);
    if (!parsed.success) throw new TRPCError({ code: 'BAD_REQUEST', cause: parsed.error });
    query = parsed.data;
    page = await caller.runs.list(query);
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
  const sweeps = await sweepsRead;
  const metricKeys = [
    ...new Set(
      page.items.flatMap((r) =>
        Object.keys(r.summary).filter((k) => typeof r.summary[k] !== 'object' && !k.startsWith(PROGRESS_PREFIX)),
      ),
    ),
  ].sort();
  return (
    <>
      <Crumbs items={[{ label: project.name }]} />
      <h1>{project.name}</h1>
      <div className="sub">{project.description || 'Runs of this project'}</div>
      <div className="toolbar">
        {canLaunch ? (
          <Link className="button primary" href={`/sweeps/new?project=${encodeURIComponent(project.name)}`}>
            Launch a sweep
          </Link>
        ) : null}
        <Link className="button" href={`${base}/settings`} data-testid="project-settings">
          Alerts
        </Link>
        <Link className="button" href={`/compare?project=${project.id}`}>
          Compare methods
        </Link>
        <a
          className="button"
          href={`/api/export?project=${project.id}`}
          download
          data-testid="export-project"
          title="runs, metrics, samples and events as JSON lines, and runs with their summaries as CSV"
        >
          Export (.tar.gz)
        </a>
        <SavedViews kind="runs" projectId={project.id} />
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
          Constraint
          <input name="constraint" placeholder="none,boundary" defaultValue={view.constraint.join(',')} size={12} />
        </label>
        <label>
          Tags (all of)
          <input name="tags" placeholder="seed-1,baseline" defaultValue={view.tags.join(',')} size={16} />
        </label>
        <label>
          Name contains
          <input name="q" defaultValue={view.q} size={16} />
        </label>
        <label title="summary metrics or config values; separate several with ;">
          Where
          <input
            name="f"
            placeholder="test/task_accuracy>=0.4; config.lr<0.001"
            defaultValue={view.filters.join('; ')}
            size={34}
          />
        </label>
        {view.cols.length ? <input type="hidden" name="cols" value={view.cols.join(',')} /> : null}
        {view.hide.length ? <input type="hidden" name="hide" value={view.hide.join(',')} /> : null}
        {view.group ? <input type="hidden" name="group" value="1" /> : null}
        {view.sort !== 'createdAt' ? <input type="hidden" name="sort" value={view.sort} /> : null}
        {view.dir !== 'desc' ? <input type="hidden" name="dir" value={view.dir} /> : null}
        <button className="primary" type="submit">
          Filter
        </button>
        <a href={base}>Reset</a>
      </form>
      {page.items.length === 0 ? (
        <Empty>
          {view.cursor ? 'No more runs.' : 'No runs match these filters.'}{' '}
          {canLaunch ? (
            <Link href={`/sweeps/new?project=${encodeURIComponent(project.name)}`}>Launch a sweep</Link>
          ) : null}
        </Empty>
      ) : (
        <RunsTable
          base={base}
          view={view}
          query={query}
          initial={JSON.parse(JSON.stringify({ items: page.items.map(tableRow), nextCursor: page.nextCursor }))}
          metricKeys={metricKeys}
        />
      )}
    </>
  );
}
