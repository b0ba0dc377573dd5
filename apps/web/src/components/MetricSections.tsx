'use client';
import { useMemo, useState, type ReactNode } from 'react';
import { MAX_FILTER, metricSections, parseCollapsed, toggleCollapsed } from '../lib/metric-sections';

/**
 * The run's charts in sections by key prefix (lib/metric-sections.ts), each one collapsible, under a filter box.
 * The filter and the collapsed sections live in the URL (`filter`, `collapsed`) so a reload or a shared link shows
 * the same page; a collapsed section mounts no charts.
 */
export function MetricSections({
  keys,
  filterParam,
  collapsedParam,
  setParam,
  chart,
}: {
  keys: readonly string[];
  filterParam: string | null;
  collapsedParam: string | null;
  setParam: (k: string, v: string | null) => void;
  chart: (key: string) => ReactNode;
}) {
  // the box keeps its own text so typing never waits on the URL (which updates a render later); only this box
  // writes the parameter, so the URL is read once
  const [text, setText] = useState(filterParam ?? '');
  const sections = useMemo(() => metricSections(keys, (k) => k, text), [keys, text]);
  const collapsed = parseCollapsed(collapsedParam);
  const onFilter = (v: string) => {
    setText(v);
    setParam('filter', v.trim() ? v : null);
  };
  return (
    <>
      <div className="chart-filter">
        <input
          type="search"
          value={text}
          maxLength={MAX_FILTER}
          placeholder="Filter charts: loss, val/*acc"
          aria-label="filter charts"
          onChange={(e) => onFilter(e.target.value)}
        />
        {text ? (
          <span className="muted" data-testid="filter-count">
            {sections.reduce((n, s) => n + s.items.length, 0)} of {keys.length} charts
          </span>
        ) : null}
      </div>
      {sections.length === 0 ? (
        <div className="empty" data-testid="no-matching-charts">
          No chart matches “{text}”.{' '}
          <button type="button" onClick={() => onFilter('')}>
            Clear the filter
          </button>
        </div>
      ) : (
        sections.map((s) => {
          const open = !collapsed.has(s.id);
          return (
            <section key={s.id} className="metric-section" data-testid="metric-section" data-section={s.id}>
              <h3>
                <button
                  type="button"
                  aria-expanded={open}
                  onClick={() => setParam('collapsed', toggleCollapsed(collapsedParam, s.id))}
                >
                  <span className="caret" aria-hidden>
                    {open ? '▾' : '▸'}
                  </span>
                  {s.id}
                  <span className="count">{s.items.length}</span>
                </button>
              </h3>
              {open ? <div className="charts">{s.items.map((k) => chart(k))}</div> : null}
            </section>
          );
        })
      )}
    </>
  );
}
