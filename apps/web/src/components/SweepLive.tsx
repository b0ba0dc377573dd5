'use client';
import Link from 'next/link';
import { useEffect, useMemo, useState } from 'react';
import type { RouterOutputs } from '@aft/api';
import { trpc } from '../lib/trpc';
import { PROGRESS_PREFIX, progressOf } from '@aft/contracts';
import { fmtNumber } from '../lib/format';
import { recordOf } from '../lib/json';
import { betaOf } from '../lib/results';
import { StatusBadge } from './ui';
import { AssessmentScatter } from './AssessmentScatter';

/** A sweep as sweeps.get returns it: every run's status, config and summary (the page polls it while runs train). */
export type SweepData = RouterOutputs['sweeps']['get'];
export type SweepRun = SweepData['runs'][number];

const POLL_MS = 2_000;
const FINISHED = ['succeeded', 'failed', 'canceled'];

/** The sweep's axes as read from a run: what the heatmap and the grid show. */
export const AXES: Record<string, (r: SweepRun) => string | number | null> = {
  method: (r) => r.method,
  constraint: (r) => r.constraint,
  beta: betaOf,
  lr: (r) => num(cfg(r)['lr']),
  seed: (r) => r.seed,
  k: (r) => num(recordOf(cfg(r)['sampling'])['k']),
  temperature: (r) => num(recordOf(cfg(r)['sampling'])['temperature']),
};
const cfg = (r: SweepRun) => recordOf(r.config);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function percentDone(r: SweepRun): string {
  const p = progressOf(recordOf(r.summary), r.status);
  return p && p.total ? `${Math.round((100 * p.step) / p.total)}%` : '';
}

/** Cells of a heatmap: the mean of `metric` over the runs at each (row, column) of two axes. */
export function heatmap(runs: readonly SweepRun[], metric: string, rowAxis: string, colAxis: string) {
  const rowOf = AXES[rowAxis]!;
  const colOf = AXES[colAxis]!;
  const sortKey = (v: string | number | null) => (v === null ? '' : typeof v === 'number' ? v : String(v));
  const uniq = (f: (r: SweepRun) => string | number | null) =>
    [...new Set(runs.map(f))].sort((a, b) => {
      const x = sortKey(a);
      const y = sortKey(b);
      return typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    });
  const rows = uniq(rowOf);
  const cols = uniq(colOf);
  const cells = rows.map((rv) =>
    cols.map((cv) => {
      const vals = runs
        .filter((r) => rowOf(r) === rv && colOf(r) === cv)
        .map((r) => num(recordOf(r.summary)[metric]))
        .filter((v): v is number => v !== null);
      return vals.length ? { mean: vals.reduce((a, b) => a + b, 0) / vals.length, n: vals.length } : null;
    }),
  );
  const all = cells
    .flat()
    .filter((c): c is { mean: number; n: number } => c !== null)
    .map((c) => c.mean);
  return { rows, cols, cells, min: Math.min(...all), max: Math.max(...all) };
}

/** The sweep page's live part: a status grid refreshed every 2 s until every run has finished, and a heatmap. */
export function SweepLive({ initial, canCancel = true }: { initial: SweepData; canCancel?: boolean }) {
  const [sweep, setSweep] = useState<SweepData>(initial);
  const [error, setError] = useState<string | null>(null);
  const [canceling, setCanceling] = useState(false);
  const done = sweep.runs.every((r) => FINISHED.includes(r.status));

  useEffect(() => {
    if (done) return;
    let stop = false;
    const tick = async () => {
      try {
        const s = await trpc.sweeps.get.query({ id: initial.id });
        if (!stop) {
          setSweep(s);
          setError(null);
        }
      } catch (e) {
        if (!stop) setError((e as Error).message);
      }
    };
    const t = setInterval(() => void tick(), POLL_MS);
    return () => {
      stop = true;
      clearInterval(t);
    };
  }, [done, initial.id]);

  const aligned = sweep.runs.filter((r) => r.parentRunId !== null);
  const metrics = useMemo(
    () =>
      [
        ...new Set(
          aligned.flatMap((r) => {
            const summary = recordOf(r.summary);
            return Object.keys(summary).filter((k) => !k.startsWith(PROGRESS_PREFIX) && num(summary[k]) !== null);
          }),
        ),
      ].sort(),
    [aligned],
  );
  const varying = Object.keys(AXES).filter((a) => new Set(aligned.map(AXES[a]!)).size > 1);
  const [metric, setMetric] = useState<string>('test/task_accuracy');
  const [rowAxis, setRowAxis] = useState<string>(varying[0] ?? 'method');
  const [colAxis, setColAxis] = useState<string>(varying[1] ?? 'constraint');
  const chosen = metrics.includes(metric) ? metric : metrics[0];
  const hm = chosen ? heatmap(aligned, chosen, rowAxis, colAxis) : null;

  const cancel = async () => {
    setCanceling(true);
    try {
      await trpc.sweeps.cancel.mutate({ id: sweep.id });
      setSweep(await trpc.sweeps.get.query({ id: sweep.id }));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setCanceling(false);
    }
  };

  return (
    <>
      <div className="toolbar">
        <StatusBadge status={sweep.status} />
        <span data-testid="sweep-counts">
          {Object.entries(sweep.counts)
            .map(([k, v]) => `${v} ${k}`)
            .join(' · ')}
        </span>
        {canCancel && !done ? (
          <button type="button" className="danger" disabled={canceling} onClick={() => void cancel()}>
            {canceling ? 'Canceling…' : 'Cancel sweep'}
          </button>
        ) : null}
        <Link href={`/compare?sweep=${sweep.id}`}>Compare these runs →</Link>
        <a href={`/api/export?sweep=${sweep.id}`} download data-testid="export-sweep">
          Export (.tar.gz)
        </a>
        {!done ? <span className="muted">refreshing every {POLL_MS / 1000} s</span> : null}
      </div>
      {error ? <div className="error">Could not refresh: {error}</div> : null}
      <h2>Runs</h2>
      <table className="data panel" data-testid="status-grid" id="status-grid">
        <thead>
          <tr>
            <th>Run</th>
            <th>Method</th>
            <th>Constraint</th>
            <th className="num">β</th>
            <th className="num">lr</th>
            <th className="num">Seed</th>
            <th>Status</th>
            <th className="num">Progress</th>
            <th className="num">Task acc.</th>
            <th className="num">Assess. acc.</th>
            <th>Degraded</th>
          </tr>
        </thead>
        <tbody>
          {sweep.runs.map((r) => (
            <tr key={r.id} data-status={r.status}>
              <td>
                <Link href={`/runs/${r.id}`}>{r.name}</Link>
                {r.parentRunId === null ? <span className="tag">parent</span> : null}
              </td>
              <td>{r.method}</td>
              <td>{r.parentRunId === null ? '—' : r.constraint}</td>
              <td className="num">{fmtNumber(AXES['beta']!(r))}</td>
              <td className="num">{fmtNumber(AXES['lr']!(r))}</td>
              <td className="num">{r.seed ?? '—'}</td>
              <td title={r.error ?? undefined}>
                <StatusBadge status={r.status} />
              </td>
              <td className="num">{percentDone(r)}</td>
              <td className="num">{fmtNumber(recordOf(r.summary)['test/task_accuracy'])}</td>
              <td className="num">{fmtNumber(recordOf(r.summary)['test/assessment_accuracy'])}</td>
              <td>
                {r.degradedAt !== null ? <Link href={`/runs/${r.id}/case-study`}>at step {r.degradedAt} →</Link> : ''}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Assessment view</h2>
      <div className="panel">
        {aligned.length ? <AssessmentScatter runs={aligned} /> : <div className="muted">No alignment runs.</div>}
      </div>
      <h2>Heatmap</h2>
      {!hm ? (
        <div className="muted">Final metrics appear here as alignment runs finish.</div>
      ) : (
        <div className="panel">
          <div className="toolbar">
            <label>
              Metric{' '}
              <select value={chosen} onChange={(e) => setMetric(e.target.value)} aria-label="heatmap metric">
                {metrics.map((m) => (
                  <option key={m}>{m}</option>
                ))}
              </select>
            </label>
            <label>
              Rows{' '}
              <select value={rowAxis} onChange={(e) => setRowAxis(e.target.value)} aria-label="heatmap rows">
                {Object.keys(AXES).map((a) => (
                  <option key={a}>{a}</option>
                ))}
              </select>
            </label>
            <label>
              Columns{' '}
              <select value={colAxis} onChange={(e) => setColAxis(e.target.value)} aria-label="heatmap columns">
                {Object.keys(AXES).map((a) => (
                  <option key={a}>{a}</option>
                ))}
              </select>
            </label>
            <span className="muted">mean over the runs in each cell</span>
          </div>
          <table className="heatmap" data-testid="heatmap">
            <thead>
              <tr>
                <th>
                  {rowAxis} \ {colAxis}
                </th>
                {hm.cols.map((c) => (
                  <th key={String(c)}>{c === null ? '—' : String(c)}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {hm.rows.map((rv, i) => (
                <tr key={String(rv)}>
                  <th>{rv === null ? '—' : String(rv)}</th>
                  {hm.cells[i]!.map((c, j) => {
                    const t = c && hm.max > hm.min ? (c.mean - hm.min) / (hm.max - hm.min) : 0.5;
                    return (
                      <td
                        key={j}
                        style={c ? { background: `rgba(110,168,254,${0.12 + 0.7 * t})` } : undefined}
                        title={c ? `${c.n} run(s)` : 'no finished run'}
                      >
                        {c ? fmtNumber(c.mean) : ''}
                      </td>
                    );
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
