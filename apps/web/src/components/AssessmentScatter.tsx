'use client';
import Link from 'next/link';
import { useEffect, useMemo, useState } from 'react';
import { toColumns, type WireSeries } from '../lib/chart-math';
import { colorAt } from '../lib/group-series';
import { inApiBatches } from '../lib/batch';
import { recordOf } from '../lib/json';
import type { ResultRun } from '../lib/results';
import { fetchSeries } from '../lib/trpc';

type ScatterRun = Pick<ResultRun, 'id' | 'name' | 'method' | 'constraint' | 'summary'>;
export interface ScatterPoint {
  runId: string;
  run: string;
  group: string;
  step: number | 'final';
  task: number;
  assess: number;
}

/** Every evaluation that measured both accuracies (periodic ones on validation questions, the final on test). */
export function scatterPoints(runs: readonly ScatterRun[], series: readonly WireSeries[]): ScatterPoint[] {
  const out: ScatterPoint[] = [];
  for (const r of runs) {
    const group = `${r.method} ${r.constraint}`;
    const task = series.find((s) => s.runId === r.id && s.key === 'val/task_accuracy');
    const assess = series.find((s) => s.runId === r.id && s.key === 'val/assessment_accuracy');
    if (task && assess) {
      const t = toColumns(task);
      const a = toColumns(assess);
      const at = new Map(a.x.map((x, i) => [x, a.y[i]]));
      t.x.forEach((x, i) => {
        const tv = t.y[i];
        const av = at.get(x);
        if (typeof tv === 'number' && typeof av === 'number')
          out.push({ runId: r.id, run: r.name, group, step: x, task: tv, assess: av });
      });
    }
    const ft = recordOf(r.summary)['test/task_accuracy'];
    const fa = recordOf(r.summary)['test/assessment_accuracy'];
    if (typeof ft === 'number' && typeof fa === 'number')
      out.push({ runId: r.id, run: r.name, group, step: 'final', task: ft, assess: fa });
  }
  return out;
}

/** The paper's Table 1 as a scatter: task accuracy against assessment accuracy at every evaluation, by method. */
export function AssessmentScatter({ runs }: { runs: ScatterRun[] }) {
  const [series, setSeries] = useState<WireSeries[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  // refetch when the set of runs or what has finished changes (the sweep page re-renders every poll)
  const key = useMemo(
    () => runs.map((r) => `${r.id}:${typeof recordOf(r.summary)['test/task_accuracy'] === 'number'}`).join(','),
    [runs],
  );
  useEffect(() => {
    const ids = key
      .split(',')
      .filter(Boolean)
      .map((k) => k.split(':')[0]!);
    if (!ids.length) return;
    Promise.all(
      inApiBatches(ids).map((c) =>
        fetchSeries({ runIds: c, keys: ['val/task_accuracy', 'val/assessment_accuracy'], buckets: 200 }),
      ),
    )
      .then((p) => setSeries(p.flat()))
      .catch((e: Error) => setError(e.message));
  }, [key]);
  if (error) return <div className="error">Could not load evaluations: {error}</div>;
  if (!series) return <div className="skeleton" style={{ height: 360 }} />;
  const pts = scatterPoints(runs, series);
  if (!pts.length)
    return (
      <div className="muted">
        No evaluation measured both accuracies yet (set evalAssessQuestions for periodic ones).
      </div>
    );
  const groups = [...new Set(pts.map((p) => p.group))].sort();
  const W = 640;
  const H = 360;
  const m = { l: 56, r: 16, t: 12, b: 44 };
  const ext = (xs: number[]) => {
    const lo = Math.min(...xs);
    const hi = Math.max(...xs);
    const pad = Math.max((hi - lo) * 0.08, 0.01);
    return [Math.max(0, lo - pad), Math.min(1, hi + pad)] as const;
  };
  const [x0, x1] = ext(pts.map((p) => p.task));
  const [y0, y1] = ext(pts.map((p) => p.assess));
  const sx = (v: number) => m.l + ((v - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
  const sy = (v: number) => H - m.b - ((v - y0) / (y1 - y0 || 1)) * (H - m.t - m.b);
  const ticks = (a: number, b: number) => Array.from({ length: 5 }, (_, i) => a + ((b - a) * i) / 4);
  const pct = (a: number, b: number) => (t: number) => `${(t * 100).toFixed(b - a < 0.08 ? 1 : 0)}%`;
  const fx = pct(x0, x1);
  const fy = pct(y0, y1);
  return (
    <div className="scatter">
      <svg
        width={W}
        height={H}
        role="img"
        aria-label="task accuracy against assessment accuracy"
        data-testid="assessment-scatter"
        data-points={pts.length}
      >
        {ticks(x0, x1).map((t) => (
          <g key={`x${t}`}>
            <line x1={sx(t)} x2={sx(t)} y1={m.t} y2={H - m.b} stroke="#2a303b" />
            <text x={sx(t)} y={H - m.b + 16} fill="#8b93a3" fontSize="11" textAnchor="middle">
              {fx(t)}
            </text>
          </g>
        ))}
        {ticks(y0, y1).map((t) => (
          <g key={`y${t}`}>
            <line x1={m.l} x2={W - m.r} y1={sy(t)} y2={sy(t)} stroke="#2a303b" />
            <text x={m.l - 6} y={sy(t) + 4} fill="#8b93a3" fontSize="11" textAnchor="end">
              {fy(t)}
            </text>
          </g>
        ))}
        <text x={(W + m.l) / 2} y={H - 6} fill="#8b93a3" fontSize="12" textAnchor="middle">
          task accuracy
        </text>
        <text
          x={14}
          y={(H - m.b) / 2}
          fill="#8b93a3"
          fontSize="12"
          textAnchor="middle"
          transform={`rotate(-90 14 ${(H - m.b) / 2})`}
        >
          assessment accuracy
        </text>
        {pts.map((p, i) => (
          <circle
            key={i}
            cx={sx(p.task)}
            cy={sy(p.assess)}
            r={p.step === 'final' ? 6 : 3.5}
            fill={colorAt(groups.indexOf(p.group))}
            fillOpacity={p.step === 'final' ? 0.95 : 0.5}
            stroke={p.step === 'final' ? '#0f1115' : 'none'}
          >
            <title>{`${p.run} · ${p.step === 'final' ? 'final (test)' : `step ${p.step} (val)`} · task ${(p.task * 100).toFixed(1)}% · assessment ${(p.assess * 100).toFixed(1)}%`}</title>
          </circle>
        ))}
      </svg>
      <div className="legend">
        {groups.map((g, i) => (
          <span key={g}>
            <i style={{ background: colorAt(i) }} /> {g}
          </span>
        ))}
        <span className="muted">large: final test evaluation · small: periodic validation evaluations</span>
        <span className="muted">
          {runs.length} runs · <Link href="#status-grid">grid</Link>
        </span>
      </div>
    </div>
  );
}
