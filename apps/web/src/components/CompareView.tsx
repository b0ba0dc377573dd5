'use client';
import Link from 'next/link';
import { useSearchParams } from 'next/navigation';
import { useEffect, useMemo, useRef, useState } from 'react';
import uPlot from 'uplot';
import { toColumns, type WireSeries } from '../lib/chart-math';
import { fmtNumber } from '../lib/format';
import { recordOf } from '../lib/json';
import { colorAt, groupSeries, withAlpha } from '../lib/group-series';
import { groupOf, RESULT_METRICS, resultRows, toCsv, toLatex, toMarkdown, type ResultRun } from '../lib/results';
import { inApiBatches } from '../lib/batch';
import { fetchSeries } from '../lib/trpc';
import { StatusBadge } from './ui';

const AXIS = { stroke: '#8b93a3', grid: { stroke: '#2a303b', width: 1 }, ticks: { stroke: '#2a303b' } };

function download(name: string, text: string, type: string) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  URL.revokeObjectURL(url);
}

/** The paper-style table with its exports. */
export function ResultsTable({ runs }: { runs: ResultRun[] }) {
  const rows = useMemo(() => resultRows(runs), [runs]);
  const [shown, setShown] = useState<'md' | 'latex' | null>(null);
  return (
    <div className="panel" style={{ padding: 0 }}>
      <div className="toolbar" style={{ padding: '10px 14px 0' }}>
        <span className="muted">mean ± std over seeds (finished runs)</span>
        <button type="button" onClick={() => download('results.csv', toCsv(rows), 'text/csv')}>
          CSV
        </button>
        <button type="button" onClick={() => setShown(shown === 'md' ? null : 'md')}>
          Markdown
        </button>
        <button type="button" onClick={() => setShown(shown === 'latex' ? null : 'latex')}>
          LaTeX
        </button>
      </div>
      {shown ? (
        <div style={{ padding: '0 14px' }}>
          <textarea
            readOnly
            className="export"
            data-testid={`export-${shown}`}
            value={shown === 'md' ? toMarkdown(rows) : toLatex(rows)}
            rows={rows.length + 5}
          />
          <button
            type="button"
            onClick={() => void navigator.clipboard?.writeText(shown === 'md' ? toMarkdown(rows) : toLatex(rows))}
          >
            Copy
          </button>
        </div>
      ) : null}
      <table className="data" data-testid="results-table">
        <thead>
          <tr>
            <th>Method</th>
            <th className="num">Runs</th>
            {RESULT_METRICS.map((m) => (
              <th key={m.key} className="num">
                {m.label}
              </th>
            ))}
            <th className="num">Degraded</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.group} data-group={r.group}>
              <td>{r.label}</td>
              <td className="num">
                {r.finished}/{r.runs}
              </td>
              {RESULT_METRICS.map((m) => {
                const s = r.stats[m.key];
                return (
                  <td key={m.key} className="num">
                    {s ? `${(s.mean * m.scale).toFixed(m.digits)} ± ${(s.std * m.scale).toFixed(m.digits)}` : '—'}
                  </td>
                );
              })}
              <td className="num" style={r.degraded ? { color: 'var(--bad)' } : undefined}>
                {r.degraded}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Overlaid curves of one metric: per group a mean line and a band, or every run's own line. No cap on runs. */
export function CompareChart({ runs: allRuns, metricKeys }: { runs: ResultRun[]; metricKeys: string[] }) {
  // VFT parents count their own steps (hundreds) while alignment runs count theirs from 0: shown apart by default
  const mixed = allRuns.some((r) => r.parentRunId === null) && allRuns.some((r) => r.parentRunId !== null);
  // the chart's choices live in the URL (chart, show, band, parents), so a link or a saved view keeps them
  const urlParams = useSearchParams();
  // Next hands the replaced URL to useSearchParams a render later: the choices are kept here too, so a control
  // shows its new state at once (a checkbox flipped back until then); a navigation to another query drops them
  const [chosen, setChosen] = useState<URLSearchParams | null>(null);
  const urlQuery = urlParams.toString();
  useEffect(() => setChosen(null), [urlQuery]);
  const params = chosen ?? urlParams;
  const setParam = (k: string, v: string | null) => {
    const q = new URLSearchParams(window.location.search);
    if (v === null) q.delete(k);
    else q.set(k, v);
    setChosen(q);
    // replaceState, not router.replace: a choice redraws the chart, not the server-rendered page
    window.history.replaceState(null, '', `${window.location.pathname}?${q.toString()}`);
  };
  const withParents = params.get('parents') === null ? !mixed : params.get('parents') === '1';
  const setWithParents = (on: boolean) => setParam('parents', on === !mixed ? null : on ? '1' : '0');
  const runs = useMemo(
    () => (withParents ? allRuns : allRuns.filter((r) => r.parentRunId !== null)),
    [allRuns, withParents],
  );
  const fallback = metricKeys.includes('val/task_accuracy') ? 'val/task_accuracy' : (metricKeys[0] ?? '');
  const asked = params.get('chart');
  const metric = asked !== null && metricKeys.includes(asked) ? asked : fallback;
  const setMetric = (k: string) => setParam('chart', k === fallback ? null : k);
  const mode: 'groups' | 'runs' = params.get('show') === 'runs' ? 'runs' : 'groups';
  const setMode = (m: 'groups' | 'runs') => setParam('show', m === 'groups' ? null : m);
  const band: 'minmax' | 'std' = params.get('band') === 'std' ? 'std' : 'minmax';
  const setBand = (b: 'minmax' | 'std') => setParam('band', b === 'minmax' ? null : b);
  const [series, setSeries] = useState<WireSeries[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const el = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!metric || !runs.length) return;
    let stale = false;
    setSeries(null);
    Promise.all(
      inApiBatches(runs.map((r) => r.id)).map((ids) => fetchSeries({ runIds: ids, keys: [metric], buckets: 400 })),
    )
      .then((parts) => {
        if (!stale) {
          setSeries(parts.flat());
          setError(null);
        }
      })
      .catch((e: Error) => !stale && setError(e.message));
    return () => {
      stale = true;
    };
  }, [metric, runs]);

  const plotData = useMemo(() => {
    if (!series) return null;
    const groupOfRun = new Map(runs.map((r) => [r.id, groupOf(r)]));
    const cols = series.map((s) => ({
      runId: s.runId,
      group: groupOfRun.get(s.runId)?.label ?? '?',
      cols: toColumns(s),
    }));
    if (mode === 'runs') {
      const named = cols.map((c) => ({ ...c, group: runs.find((r) => r.id === c.runId)?.name ?? c.runId }));
      return { ...groupSeries(named, band), labels: named.map((c) => c.group), withBands: false };
    }
    const g = groupSeries(cols, band);
    return { ...g, labels: g.groups.map((x) => `${x.key} (${x.runs})`), withBands: true };
  }, [series, runs, mode, band]);

  useEffect(() => {
    const node = el.current;
    if (!node || !plotData || !plotData.x.length) return;
    const s: uPlot.Series[] = [{ label: 'step' }];
    const data: (number | null)[][] = [plotData.x];
    const bands: uPlot.Band[] = [];
    plotData.groups.forEach((g, i) => {
      const c = colorAt(i);
      s.push({ label: plotData.labels[i], stroke: c, width: mode === 'runs' ? 1 : 2, value: (_u, v) => fmtNumber(v) });
      data.push(g.mean);
    });
    if (plotData.withBands) {
      plotData.groups.forEach((g, i) => {
        const hiIdx = data.length;
        s.push({
          label: `${plotData.labels[i]} hi`,
          stroke: 'transparent',
          width: 0,
          points: { show: false },
          value: (_u, v) => fmtNumber(v),
        });
        data.push(g.hi);
        s.push({
          label: `${plotData.labels[i]} lo`,
          stroke: 'transparent',
          width: 0,
          points: { show: false },
          value: (_u, v) => fmtNumber(v),
        });
        data.push(g.lo);
        bands.push({ series: [hiIdx, hiIdx + 1], fill: withAlpha(colorAt(i), 0.15) });
      });
    }
    const u = new uPlot(
      {
        width: node.clientWidth || 600,
        height: 320,
        scales: { x: { time: false } },
        series: s,
        bands,
        axes: [AXIS, { ...AXIS, size: 60, values: (_u, t) => t.map((v) => fmtNumber(v)) }],
        legend: { live: true },
        cursor: { drag: { x: true, y: false, setScale: true } },
      },
      data as uPlot.AlignedData,
      node,
    );
    const ro = new ResizeObserver(() => u.setSize({ width: node.clientWidth, height: 320 }));
    ro.observe(node);
    return () => {
      ro.disconnect();
      u.destroy();
    };
  }, [plotData, mode]);

  return (
    <div className="panel" data-testid="compare-chart">
      <div className="toolbar">
        <label>
          Metric{' '}
          <select value={metric} onChange={(e) => setMetric(e.target.value)} aria-label="compare metric">
            {metricKeys.map((k) => (
              <option key={k}>{k}</option>
            ))}
          </select>
        </label>
        <label>
          Show{' '}
          <select value={mode} onChange={(e) => setMode(e.target.value as 'groups' | 'runs')} aria-label="compare mode">
            <option value="groups">a mean line per method × constraint</option>
            <option value="runs">every run</option>
          </select>
        </label>
        {mode === 'groups' ? (
          <label>
            Band{' '}
            <select
              value={band}
              onChange={(e) => setBand(e.target.value as 'minmax' | 'std')}
              aria-label="compare band"
            >
              <option value="minmax">min–max over seeds</option>
              <option value="std">± 1 std</option>
            </select>
          </label>
        ) : null}
        {mixed ? (
          <label>
            <input type="checkbox" checked={withParents} onChange={(e) => setWithParents(e.target.checked)} /> VFT
            parents (their own step scale)
          </label>
        ) : null}
        <span className="muted">{runs.length} runs · drag to zoom, double-click to reset</span>
      </div>
      {error ? <div className="error">Could not load curves: {error}</div> : null}
      {!series && !error ? <div className="skeleton" style={{ height: 320 }} /> : null}
      {series && plotData && !plotData.x.length ? (
        <div className="muted">None of these runs logged {metric}.</div>
      ) : null}
      <div ref={el} data-testid="compare-plot" data-series={plotData?.groups.length ?? 0} />
    </div>
  );
}

/** Each run's final metrics with deltas against a chosen baseline run. */
export function BaselineTable({ runs }: { runs: ResultRun[] }) {
  const [baseline, setBaseline] = useState(
    runs.find((r) => r.parentRunId === null && r.method === 'vft')?.id ?? runs[0]?.id ?? '',
  );
  const base = runs.find((r) => r.id === baseline);
  const val = (r: ResultRun, k: string) => {
    const v = recordOf(r.summary)[k];
    return typeof v === 'number' ? v : null;
  };
  return (
    <div className="panel" style={{ padding: 0, overflowX: 'auto' }}>
      <div className="toolbar" style={{ padding: '10px 14px 0' }}>
        <label>
          Baseline{' '}
          <select value={baseline} onChange={(e) => setBaseline(e.target.value)} aria-label="baseline run">
            {runs.map((r) => (
              <option key={r.id} value={r.id}>
                {r.name}
              </option>
            ))}
          </select>
        </label>
        <span className="muted">Δ = run − baseline</span>
      </div>
      <table className="data" data-testid="baseline-table">
        <thead>
          <tr>
            <th>Run</th>
            <th>Group</th>
            <th className="num">Seed</th>
            <th>Status</th>
            {RESULT_METRICS.map((m) => (
              <th key={m.key} className="num">
                {m.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {runs.map((r) => (
            <tr key={r.id} className={r.id === baseline ? 'baseline' : undefined}>
              <td>
                <Link href={`/runs/${r.id}`}>{r.name}</Link>
              </td>
              <td>{groupOf(r).label}</td>
              <td className="num">{r.seed ?? '—'}</td>
              <td>
                <StatusBadge status={r.status} />
              </td>
              {RESULT_METRICS.map((m) => {
                const v = val(r, m.key);
                const b = base ? val(base, m.key) : null;
                const d = v !== null && b !== null && r.id !== baseline ? (v - b) * m.scale : null;
                return (
                  <td key={m.key} className="num">
                    {v === null ? '—' : (v * m.scale).toFixed(m.digits)}
                    {d !== null ? (
                      <span className={`delta ${d === 0 ? '' : d > 0 === m.higherIsBetter ? 'up' : 'down'}`}>
                        {' '}
                        ({d > 0 ? '+' : ''}
                        {d.toFixed(m.digits)})
                      </span>
                    ) : null}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
