'use client';
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import type { RouterInputs, RouterOutputs } from '@aft/api';
import { PROGRESS_PREFIX } from '@aft/contracts';
import { fmtAgo, fmtDuration, fmtNumber } from '../lib/format';
import { runsViewHref, sortToggle, type RunsView } from '../lib/runs-url';
import { trpc } from '../lib/trpc';
import { StatusBadge } from './ui';

/** A row of runs.list, as the browser receives it. */
export type RunRow = RouterOutputs['runs']['list']['items'][number];
/** The table's filters and sort, as runs.list takes them; the table asks for each next page itself. */
export type RunsQuery = RouterInputs['runs']['list'];

const ROW_H = 34;
const PAGE = 200;
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

type Item = { kind: 'run'; run: RunRow } | { kind: 'group'; key: string; label: string; runs: RunRow[] };

/** Group rows by method × constraint, each group led by an aggregate row (count, status mix, metric means). */
export function groupRows(runs: readonly RunRow[]): Item[] {
  const groups = new Map<string, RunRow[]>();
  for (const r of runs) {
    const k = `${r.method} · ${r.constraint}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  return [...groups].flatMap(([key, rs]) => [
    { kind: 'group' as const, key, label: key, runs: rs },
    ...rs.map((run) => ({ kind: 'run' as const, run })),
  ]);
}

/**
 * The runs table: every matching run, loaded page by page as you scroll and drawn virtually (only the rows in view
 * exist in the DOM), so 10,000 runs scroll as smoothly as 10. Sorting, filters, columns and grouping are in the URL;
 * a selection goes to the compare page.
 */
export function RunsTable({
  base,
  view,
  query,
  initial,
  metricKeys,
}: {
  base: string;
  view: RunsView;
  query: RunsQuery;
  initial: { items: RunRow[]; nextCursor: string | null };
  metricKeys: string[];
}) {
  const router = useRouter();
  const [rows, setRows] = useState<RunRow[]>(initial.items);
  const [cursor, setCursor] = useState<string | null>(initial.nextCursor);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [chooser, setChooser] = useState(false);
  const scroller = useRef<HTMLDivElement>(null);

  useEffect(() => {
    setRows(initial.items);
    setCursor(initial.nextCursor);
  }, [initial]);

  const cols = view.cols.length ? view.cols : metricKeys.filter((k) => !k.startsWith(PROGRESS_PREFIX)).slice(0, 8);
  const items: Item[] = useMemo(
    () => (view.group ? groupRows(rows) : rows.map((run) => ({ kind: 'run', run }))),
    [rows, view.group],
  );

  const loadMore = useCallback(async () => {
    if (!cursor || loading) return;
    setLoading(true);
    try {
      const page = await trpc.runs.list.query({ ...query, cursor, limit: PAGE });
      setRows((r) => [...r, ...page.items]);
      setCursor(page.nextCursor);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setLoading(false);
    }
  }, [cursor, loading, query]);

  const v = useVirtualizer({
    count: items.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_H,
    overscan: 12,
  });
  const virtual = v.getVirtualItems();
  const last = virtual.at(-1)?.index ?? 0;
  useEffect(() => {
    if (last >= items.length - 40) void loadMore();
  }, [last, items.length, loadMore]);

  const go = (patch: Partial<RunsView>) =>
    router.replace(runsViewHref(base, view, { ...patch, cursor: null }), { scroll: false });
  const template = `34px 110px minmax(180px, 2fr) 80px 90px minmax(80px, 1fr) 90px 80px ${cols.map(() => 'minmax(110px, 1fr)').join(' ')}`;
  const header = (column: string, label: string, numeric = false) => {
    const active = view.sort === column;
    return (
      <div className={`th${numeric ? ' num' : ''}`} role="columnheader">
        <a className={active ? 'active' : undefined} href={runsViewHref(base, view, sortToggle(view, column))}>
          {label}
          {active ? (view.dir === 'desc' ? ' ↓' : ' ↑') : ''}
        </a>
      </div>
    );
  };
  const toggle = (id: string) =>
    setSelected((s) => {
      const n = new Set(s);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });
  const now = Date.now();

  return (
    <>
      <div className="toolbar">
        <label>
          <input type="checkbox" checked={view.group} onChange={(e) => go({ group: e.target.checked })} /> Group by
          method × constraint
        </label>
        <button type="button" onClick={() => setChooser((c) => !c)} aria-expanded={chooser}>
          Columns ({cols.length})
        </button>
        <button
          type="button"
          className="primary"
          disabled={selected.size < 1}
          onClick={() => router.push(`/compare?runs=${[...selected].join(',')}`)}
          data-testid="compare-selected"
        >
          Compare {selected.size || ''} selected
        </button>
        <span className="muted" data-testid="runs-count">
          {rows.length.toLocaleString('en-US')}
          {cursor ? '+' : ''} runs {cursor ? '(more load as you scroll)' : ''}
        </span>
      </div>
      {chooser ? (
        <div className="panel chooser" data-testid="column-chooser">
          {metricKeys.length === 0 ? <span className="muted">No summary metrics yet.</span> : null}
          {metricKeys.map((k) => (
            <label key={k} className="check">
              <input
                type="checkbox"
                checked={cols.includes(k)}
                onChange={() => go({ cols: cols.includes(k) ? cols.filter((c) => c !== k) : [...cols, k] })}
              />{' '}
              {k}
            </label>
          ))}
        </div>
      ) : null}
      {error ? <div className="error">Could not load more runs: {error}</div> : null}
      <div className="vtable panel" data-testid="runs-table" role="table" aria-rowcount={rows.length}>
        <div className="tr head" role="row" style={{ gridTemplateColumns: template }}>
          <div className="th" />
          {header('status', 'Status')}
          {header('name', 'Name')}
          {header('method', 'Method')}
          <div className="th">Constraint</div>
          <div className="th">Tags</div>
          {header('createdAt', 'Created')}
          <div className="th num">Runtime</div>
          {cols.map((k) => header(`summary.${k}`, k, true))}
        </div>
        <div ref={scroller} className="vbody" style={{ height: Math.min(640, Math.max(items.length, 3) * ROW_H + 4) }}>
          <div style={{ height: v.getTotalSize(), position: 'relative' }}>
            {virtual.map((vi) => {
              const it = items[vi.index]!;
              const style = { transform: `translateY(${vi.start}px)`, gridTemplateColumns: template, height: ROW_H };
              if (it.kind === 'group') {
                const statuses = new Map<string, number>();
                it.runs.forEach((r) => statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1));
                return (
                  <div key={`g-${it.key}`} className="tr group" role="row" style={style} data-group={it.key}>
                    <div className="td" />
                    <div className="td">{[...statuses].map(([s, n]) => `${n} ${s}`).join(', ')}</div>
                    <div className="td">
                      <b>{it.label}</b> · {it.runs.length} runs
                    </div>
                    <div className="td" />
                    <div className="td" />
                    <div className="td" />
                    <div className="td" />
                    <div className="td" />
                    {cols.map((k) => {
                      const vals = it.runs.map((r) => num(r.summary[k])).filter((x): x is number => x !== null);
                      return (
                        <div key={k} className="td num" title="mean over the loaded runs of the group">
                          {vals.length ? `μ ${fmtNumber(vals.reduce((a, b) => a + b, 0) / vals.length)}` : ''}
                        </div>
                      );
                    })}
                  </div>
                );
              }
              const r = it.run;
              const start = r.startedAt ? new Date(r.startedAt).getTime() : null;
              const end = r.finishedAt ? new Date(r.finishedAt).getTime() : r.status === 'running' ? now : null;
              return (
                <div
                  key={r.id}
                  className={`tr${selected.has(r.id) ? ' selected' : ''}`}
                  role="row"
                  style={style}
                  data-run={r.id}
                >
                  <div className="td">
                    <input
                      type="checkbox"
                      checked={selected.has(r.id)}
                      onChange={() => toggle(r.id)}
                      aria-label={`select ${r.name}`}
                    />
                  </div>
                  <div className="td">
                    <StatusBadge status={r.status} />
                  </div>
                  <div className="td">
                    <Link href={`/runs/${r.id}`}>{r.name}</Link>
                  </div>
                  <div className="td">{r.method}</div>
                  <div className="td">{r.constraint}</div>
                  <div className="td">
                    {r.tags.map((t) => (
                      <a key={t} className="tag" href={runsViewHref(base, view, { tags: [t], cursor: null })}>
                        {t}
                      </a>
                    ))}
                  </div>
                  <div className="td" title={new Date(r.createdAt).toISOString()}>
                    {fmtAgo(r.createdAt, now)}
                  </div>
                  <div className="td num">{start && end ? fmtDuration(end - start) : '—'}</div>
                  {cols.map((k) => (
                    <div key={k} className="td num">
                      {fmtNumber(r.summary[k])}
                    </div>
                  ))}
                </div>
              );
            })}
          </div>
        </div>
      </div>
    </>
  );
}
