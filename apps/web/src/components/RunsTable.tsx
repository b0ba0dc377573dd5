'use client';
import { useRouter } from 'next/navigation';
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import type { RouterInputs } from '@aft/api';
import { PROGRESS_PREFIX } from '@aft/contracts';
import { runsViewHref, sortToggle, type RunsView } from '../lib/runs-url';
import { trpc } from '../lib/trpc';
import {
  breakable,
  HIDEABLE,
  runColumns,
  tableRow,
  type Cell,
  type Column,
  type RunGroup,
  type RunRow,
} from './runs-columns';

export type { RunRow } from './runs-columns';
/** The table's filters and sort, as runs.list takes them; the table asks for each next page itself. */
export type RunsQuery = RouterInputs['runs']['list'];

const ROW_H = 34;
const PAGE = 200;

type Item = { kind: 'run'; run: RunRow } | ({ kind: 'group' } & RunGroup);

/** Group rows by method × constraint, each group led by an aggregate row (count, status mix, metric means). */
export function groupRows(runs: readonly RunRow[]): Item[] {
  const groups = new Map<string, RunRow[]>();
  for (const r of runs) {
    const k = `${r.method} · ${r.constraint}`;
    const g = groups.get(k);
    if (g) g.push(r);
    else groups.set(k, [r]);
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
      setRows((r) => [...r, ...page.items.map(tableRow)]);
      setCursor(page.nextCursor);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setLoading(false);
    }
  }, [cursor, loading, query]);

  const columns = runColumns(cols, view.hide);
  const template = columns.map((c) => c.track).join(' ');
  // header and body share this width: at least the columns' sum, else the scroller's (the name takes the rest)
  const minWidth = columns.reduce((a, c) => a + c.min, 0);
  // the header sits above the rows inside the one scroller (sticky), so the rows start this far down in it
  const head = useRef<HTMLDivElement>(null);
  const [headH, setHeadH] = useState(36);
  useLayoutEffect(() => {
    const el = head.current;
    if (!el) return;
    const measure = () => setHeadH(el.offsetHeight);
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const v = useVirtualizer({
    count: items.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW_H,
    overscan: 12,
    scrollMargin: headH,
  });
  const virtual = v.getVirtualItems();
  const last = virtual.at(-1)?.index ?? 0;
  useEffect(() => {
    if (last >= items.length - 40) void loadMore();
  }, [last, items.length, loadMore]);

  const go = (patch: Partial<RunsView>) =>
    router.replace(runsViewHref(base, view, { ...patch, cursor: null }), { scroll: false });
  const header = (c: Column) => {
    const active = c.sort !== undefined && view.sort === c.sort;
    const label = c.id.startsWith('summary.') ? breakable(c.label) : c.label;
    return (
      <div
        key={c.id}
        className={`th${c.numeric ? ' num' : ''}`}
        role="columnheader"
        title={c.label || undefined}
        aria-label={c.id === 'select' ? 'select' : undefined}
        aria-sort={active ? (view.dir === 'desc' ? 'descending' : 'ascending') : undefined}
      >
        {c.sort ? (
          <a className={active ? 'active' : undefined} href={runsViewHref(base, view, sortToggle(view, c.sort))}>
            {label}
            {active ? (view.dir === 'desc' ? ' ↓' : ' ↑') : ''}
          </a>
        ) : (
          label
        )}
      </div>
    );
  };
  const cell = (c: Column, { body, title }: Cell) => (
    <div
      key={c.id}
      className={`td${c.numeric ? ' num' : ''}${c.className ? ` ${c.className}` : ''}`}
      role="cell"
      title={title}
    >
      {body}
    </div>
  );
  const toggle = (id: string) =>
    setSelected((s) => {
      const n = new Set(s);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });
  const tagHref = (t: string) => runsViewHref(base, view, { tags: [t], cursor: null });
  const now = Date.now();

  return (
    <>
      <div className="toolbar">
        <label>
          <input type="checkbox" checked={view.group} onChange={(e) => go({ group: e.target.checked })} /> Group by
          method × constraint
        </label>
        <button type="button" onClick={() => setChooser((c) => !c)} aria-expanded={chooser}>
          Columns ({columns.length - 1})
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
          <span className="muted">Columns</span>
          {HIDEABLE.map(({ id, label }) => (
            <label key={id} className="check">
              <input
                type="checkbox"
                checked={!view.hide.includes(id)}
                onChange={() =>
                  go({ hide: view.hide.includes(id) ? view.hide.filter((h) => h !== id) : [...view.hide, id] })
                }
              />{' '}
              {label}
            </label>
          ))}
          <span className="muted">Summary metrics</span>
          {metricKeys.length === 0 ? <span className="muted">none yet</span> : null}
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
        {/* one scroller for both directions: the header moves sideways with the rows and no scrollbar sits beside
            the rows only, so header and rows always have the same width */}
        <div ref={scroller} className="vscroll">
          <div ref={head} className="tr head" role="row" style={{ gridTemplateColumns: template, minWidth }}>
            {columns.map(header)}
          </div>
          <div className="vbody" style={{ height: v.getTotalSize(), minWidth }}>
            {virtual.map((vi) => {
              const it = items[vi.index]!;
              const style = {
                transform: `translateY(${vi.start - headH}px)`,
                gridTemplateColumns: template,
                height: ROW_H,
              };
              if (it.kind === 'group') {
                return (
                  <div key={`g-${it.key}`} className="tr group" role="row" style={style} data-group={it.key}>
                    {columns.map((c) => cell(c, c.group?.(it) ?? { body: null }))}
                  </div>
                );
              }
              const r = it.run;
              const ctx = { now, selected: selected.has(r.id), toggle: () => toggle(r.id), tagHref };
              return (
                <div
                  key={r.id}
                  className={`tr${ctx.selected ? ' selected' : ''}`}
                  role="row"
                  style={style}
                  data-run={r.id}
                >
                  {columns.map((c) => cell(c, c.run(r, ctx)))}
                </div>
              );
            })}
          </div>
        </div>
      </div>
    </>
  );
}
