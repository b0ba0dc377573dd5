import Link from 'next/link';
import { TRPCError } from '@trpc/server';
import { api } from '../../server/api';
import { Crumbs, Empty, ErrorBox } from '../../components/ui';
import { BaselineTable, CompareChart, ResultsTable } from '../../components/CompareView';
import { PairedView, type PairedData } from '../../components/PairedView';
import { SavedViews } from '../../components/SavedViews';
import { configDiff, type ResultRun } from '../../lib/results';
import { inApiBatches } from '../../lib/batch';

export const dynamic = 'force-dynamic';

const MAX_RUNS = 2000;

type Source = { title: string; crumbs: { href?: string; label: string }[]; runs: ResultRun[] };

type Caller = Awaited<ReturnType<typeof api>>;

/** The most runs one paired comparison reads (compare.paired's limit). */
const PAIRED_RUNS = 200;

/**
 * The paired comparison for the URL's control and metric; one the runs do not have (a stale or hand-edited link)
 * falls back to the defaults, with a notice saying so.
 */
async function loadPaired(
  caller: Caller,
  runIds: string[],
  q: { control?: string; paired?: string },
): Promise<{ data: PairedData; notice?: string }> {
  const input = { runIds: runIds.slice(0, PAIRED_RUNS), split: q.paired || undefined, control: q.control || undefined };
  try {
    return { data: await caller.compare.paired(input) };
  } catch (e) {
    if (!(e instanceof TRPCError && e.code === 'BAD_REQUEST') || (!input.split && !input.control)) throw e;
    const data = await caller.compare.paired({ runIds: input.runIds });
    return { data, notice: `${e.message.replace(/^invalid input — /, '')} — showing the default instead.` };
  }
}

async function load(caller: Caller, q: { sweep?: string; project?: string; runs?: string }): Promise<Source | string> {
  if (q.sweep) {
    const s = await caller.sweeps.get({ id: q.sweep });
    return {
      title: `Sweep ${s.name}`,
      crumbs: [
        { href: `/projects/${s.project.id}`, label: s.project.name },
        { href: `/sweeps/${s.id}`, label: s.name },
        { label: 'compare' },
      ],
      runs: s.runs,
    };
  }
  if (q.project) {
    const p = await caller.projects.get({ id: q.project });
    const runs: ResultRun[] = [];
    let cursor: string | undefined;
    do {
      const page = await caller.runs.list({ projectId: p.id, limit: 200, cursor });
      runs.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor && runs.length < MAX_RUNS);
    return {
      title: `Project ${p.name}`,
      crumbs: [{ href: `/projects/${p.id}`, label: p.name }, { label: 'compare' }],
      runs,
    };
  }
  if (q.runs) {
    const ids = [...new Set(q.runs.split(',').filter(Boolean))].slice(0, 200);
    const runs = await Promise.all(ids.map((id) => caller.runs.get({ id })));
    return { title: `${runs.length} runs`, crumbs: [{ label: 'compare' }], runs };
  }
  return 'Choose what to compare: a sweep (?sweep=…), a project (?project=…) or runs (?runs=id1,id2,…).';
}

export default async function ComparePage(props: {
  searchParams: Promise<{ sweep?: string; project?: string; runs?: string; control?: string; paired?: string }>;
}) {
  const q = await props.searchParams;
  const caller = await api();
  let src: Source | string;
  try {
    src = await load(caller, q);
  } catch (e) {
    if (e instanceof TRPCError && (e.code === 'NOT_FOUND' || e.code === 'BAD_REQUEST')) {
      return (
        <ErrorBox title="Nothing to compare">
          {e.message}. <Link href="/">All projects</Link>
        </ErrorBox>
      );
    }
    throw e;
  }
  if (typeof src === 'string') return <Empty>{src}</Empty>;
  const { runs } = src;
  const ids = runs.map((r) => r.id);
  const [keySets, paired] = await Promise.all([
    Promise.all(inApiBatches(ids).map((batch) => caller.metrics.keys({ runIds: batch }))),
    ids.length ? loadPaired(caller, ids, q) : null,
  ]);
  const metricKeys = [...new Set(keySets.flat().map((k) => k.key))].sort();
  const diff = configDiff(runs.slice(0, 40));
  return (
    <>
      <Crumbs items={src.crumbs} />
      <h1>Compare · {src.title}</h1>
      <div className="sub">
        {runs.length} runs{runs.length >= MAX_RUNS ? ` (the first ${MAX_RUNS})` : ''}. Rows group runs by method ×
        constraint (× β); the spread is over seeds.
      </div>
      <SavedViews kind="compare" projectId={q.project} runId={ids[0]} />
      {runs.length === 0 ? (
        <Empty>No runs here yet.</Empty>
      ) : (
        <>
          <h2>Paired comparison</h2>
          {runs.length > PAIRED_RUNS ? <div className="muted">Paired over the first {PAIRED_RUNS} runs.</div> : null}
          {paired ? <PairedView data={paired.data} notice={paired.notice} /> : null}
          <h2>Results</h2>
          <ResultsTable runs={runs} />
          <h2>Curves</h2>
          {metricKeys.length ? (
            <CompareChart runs={runs} metricKeys={metricKeys} />
          ) : (
            <div className="muted">No metrics logged yet.</div>
          )}
          <h2>Runs against a baseline</h2>
          <BaselineTable runs={runs} />
          <h2>Config differences</h2>
          {diff.length === 0 ? (
            <div className="muted">These runs share every config value.</div>
          ) : (
            <div className="panel" style={{ padding: 0, overflowX: 'auto' }}>
              <table className="data" data-testid="config-diff">
                <thead>
                  <tr>
                    <th>Key</th>
                    {runs.slice(0, 40).map((r) => (
                      <th key={r.id}>
                        <Link href={`/runs/${r.id}`}>{r.name}</Link>
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {diff.map((d) => (
                    <tr key={d.key}>
                      <td className="mono">{d.key}</td>
                      {d.values.map((v, i) => (
                        <td key={i} className="mono">
                          {v}
                        </td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
              {runs.length > 40 ? (
                <div className="muted" style={{ padding: 8 }}>
                  showing the first 40 runs&apos; configs
                </div>
              ) : null}
            </div>
          )}
        </>
      )}
    </>
  );
}
