'use client';
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useEffect, useMemo, useRef, useState } from 'react';
import uPlot from 'uplot';
import { alignJobConfig, resourcesSpec, wantsGpu, type AlignJobConfig } from '@aft/queue/spec';
import type { RouterOutputs } from '@aft/api';
import { toColumns, type WireSeries } from '../lib/chart-math';
import type { Degradation, Example } from '../lib/degradation';
import { fmtNumber } from '../lib/format';
import { fetchSeries, trpc } from '../lib/trpc';
import { MetricChart } from './MetricChart';

/** The run the case study is about, with its config read as an object and its project's name. */
type CaseRun = Pick<RouterOutputs['runs']['get'], 'id' | 'name' | 'method' | 'constraint' | 'parentRunId'> & {
  config: Record<string, unknown>;
  projectName: string;
};

const CHART_KEYS = [
  'val/task_accuracy',
  'val/ref_perplexity',
  'val/malformed_rate',
  'val/repetition_rate',
  'train/loss',
  'train/score/gap',
  'train/score/negative',
];
const SIGNALS: Record<string, string> = {
  pplRatio: 'reference perplexity ÷ parent’s',
  malformedRate: 'malformed-output rate',
  repetitionRate: 'repetition rate',
  accuracyDrop: 'accuracy drop from the parent',
};
const AXIS = { stroke: '#8b93a3', grid: { stroke: '#2a303b', width: 1 }, ticks: { stroke: '#2a303b' } };

function Generation({ ex }: { ex: Example | undefined }) {
  if (!ex) return <td className="muted">—</td>;
  return (
    <td>
      <pre className={`gen ${ex.correct ? 'ok' : 'bad'}`}>{ex.output || '(empty)'}</pre>
      <span className={ex.correct ? 'ok-text' : 'bad-text'}>{ex.correct ? 'correct' : 'wrong'}</span>
    </td>
  );
}

/** Positive and negative score quantiles over training (relative to each group's lowest positive), with the boundary. */
function ScoreDistChart({ series, onset }: { series: WireSeries[]; onset: number }) {
  const el = useRef<HTMLDivElement>(null);
  const byKey = useMemo(() => new Map(series.map((s) => [s.key, toColumns(s)])), [series]);
  const ready = byKey.has('dist/positive_p50') && byKey.has('dist/negative_p50');
  useEffect(() => {
    const node = el.current;
    if (!node || !ready) return;
    const x = byKey.get('dist/positive_p50')!.x;
    const col = (k: string) => {
      const c = byKey.get(k);
      if (!c) return x.map(() => null);
      const m = new Map(c.x.map((v, i) => [v, c.y[i] ?? null]));
      return x.map((v) => m.get(v) ?? null);
    };
    const keys = [
      'positive_p50',
      'negative_p50',
      'positive_p90',
      'positive_p10',
      'negative_p90',
      'negative_p10',
      'boundary',
    ];
    const data = [x, ...keys.map((k) => col(`dist/${k}`))] as uPlot.AlignedData;
    const thin = { width: 0, stroke: 'transparent', points: { show: false } };
    const u = new uPlot(
      {
        width: node.clientWidth || 600,
        height: 280,
        scales: { x: { time: false } },
        series: [
          { label: 'step' },
          { label: 'positive median', stroke: '#3ecf8e', width: 2, value: (_u, v) => fmtNumber(v) },
          { label: 'negative median', stroke: '#f16063', width: 2, value: (_u, v) => fmtNumber(v) },
          { label: 'pos p90', ...thin },
          { label: 'pos p10', ...thin },
          { label: 'neg p90', ...thin },
          { label: 'neg p10', ...thin },
          { label: 'boundary (−β)', stroke: '#f5a524', width: 1.5, dash: [6, 4], value: (_u, v) => fmtNumber(v) },
        ],
        bands: [
          { series: [3, 4], fill: 'rgba(62,207,142,0.15)' },
          { series: [5, 6], fill: 'rgba(241,96,99,0.15)' },
        ],
        axes: [AXIS, { ...AXIS, size: 60, values: (_u, t) => t.map((v) => fmtNumber(v)) }],
        plugins: [
          {
            hooks: {
              draw: [
                (p) => {
                  const px = Math.round(p.valToPos(onset, 'x', true));
                  const c = p.ctx;
                  c.save();
                  c.strokeStyle = '#f16063';
                  c.setLineDash([5, 4]);
                  c.beginPath();
                  c.moveTo(px, p.bbox.top);
                  c.lineTo(px, p.bbox.top + p.bbox.height);
                  c.stroke();
                  c.restore();
                },
              ],
            },
          },
        ],
      },
      data,
      node,
    );
    const ro = new ResizeObserver(() => u.setSize({ width: node.clientWidth, height: 280 }));
    ro.observe(node);
    return () => {
      ro.disconnect();
      u.destroy();
    };
  }, [byKey, ready, onset]);
  if (!ready)
    return (
      <div className="muted">
        This run logged no score distributions (they come with the worker&apos;s alignment runs).
      </div>
    );
  return <div ref={el} data-testid="score-dist" />;
}

function ForkForm({ run, lastGoodStep }: { run: CaseRun; lastGoodStep: number | null }) {
  // a run the platform launched from a parent keeps the config its launch took, which a fork takes again
  const launched = run.parentRunId === null ? null : alignJobConfig.safeParse(run.config);
  if (run.parentRunId === null || !launched?.success)
    return <div className="muted">Only alignment runs launched by the platform can be forked.</div>;
  return <ForkSettings run={run} parentRunId={run.parentRunId} config={launched.data} lastGoodStep={lastGoodStep} />;
}

function ForkSettings({
  run,
  parentRunId,
  config: c,
  lastGoodStep,
}: {
  run: CaseRun;
  parentRunId: string;
  config: AlignJobConfig;
  lastGoodStep: number | null;
}) {
  const [from, setFrom] = useState<'last-good' | 'parent'>(lastGoodStep !== null ? 'last-good' : 'parent');
  const router = useRouter();
  const [constraint, setConstraint] = useState<AlignJobConfig['constraint']>(
    c.constraint === 'none' ? 'boundary' : c.constraint,
  );
  const [beta, setBeta] = useState(String(c.beta));
  const [lr, setLr] = useState(String(c.lr));
  const [wNll, setWNll] = useState(String(c.wNll));
  const [steps, setSteps] = useState(String(c.steps));
  // where the run asked to train, which a fork asks again unless unticked
  const [gpu, setGpu] = useState(() => wantsGpu(resourcesSpec.safeParse(run.config['resources']).data));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [launched, setLaunched] = useState<{ href: string; warning: string } | null>(null);
  const fork = async () => {
    setBusy(true);
    setError(null);
    try {
      const res = await trpc.runs.launch.mutate({
        kind: 'align',
        project: run.projectName,
        name: `${run.name}-fork`,
        parentRunId,
        ...(from === 'last-good' ? { forkOf: run.id } : {}),
        tags: ['fork'],
        // the numbers as typed: the launch checks them, and says what is wrong
        config: { ...c, constraint, beta: Number(beta), lr: Number(lr), wNll: Number(wNll), steps: Number(steps) },
        ...(gpu ? { resources: { gpu: 1 } } : {}),
      });
      // a fork the server warned about (no GPU worker) says so, with a link on, instead of navigating
      if (res.warning) setLaunched({ href: `/runs/${res.runId}`, warning: res.warning });
      else router.push(`/runs/${res.runId}`);
    } catch (e) {
      setError((e as Error).message);
      setBusy(false);
    }
  };
  return (
    <div className="panel">
      <div className="toolbar">
        <span className="muted">Start from</span>
        <label className="check">
          <input
            type="radio"
            name="fork-from"
            checked={from === 'last-good'}
            disabled={lastGoodStep === null}
            onChange={() => setFrom('last-good')}
          />{' '}
          this run&apos;s last good checkpoint
          {lastGoodStep !== null ? ` (step ${lastGoodStep})` : ' (none: it degraded at its first evaluation)'}
        </label>
        <label className="check">
          <input type="radio" name="fork-from" checked={from === 'parent'} onChange={() => setFrom('parent')} /> the VFT
          parent
        </label>
      </div>
      <div className="muted" style={{ marginBottom: 8 }}>
        Same parent (baseline and DPO reference) and sample set; the settings below, the rest as this run.
      </div>
      <div className="toolbar">
        <label>
          Constraint{' '}
          <select
            value={constraint}
            onChange={(e) => {
              const picked = alignJobConfig.shape.constraint.safeParse(e.target.value);
              if (picked.success) setConstraint(picked.data);
            }}
            aria-label="fork constraint"
          >
            <option>none</option>
            <option>detach</option>
            <option>boundary</option>
          </select>
        </label>
        <label>
          β <input value={beta} onChange={(e) => setBeta(e.target.value)} size={5} aria-label="fork beta" />
        </label>
        <label>
          lr <input value={lr} onChange={(e) => setLr(e.target.value)} size={7} aria-label="fork lr" />
        </label>
        <label>
          w_nll <input value={wNll} onChange={(e) => setWNll(e.target.value)} size={4} aria-label="fork wNll" />
        </label>
        <label>
          steps <input value={steps} onChange={(e) => setSteps(e.target.value)} size={5} aria-label="fork steps" />
        </label>
        <label className="check" title="GPU jobs wait for a worker started with AFT_WORKER_GPUS">
          <input type="checkbox" checked={gpu} onChange={(e) => setGpu(e.target.checked)} aria-label="fork on a GPU" />{' '}
          on a GPU
        </label>
        <button type="button" className="primary" disabled={busy} onClick={() => void fork()}>
          {launched ? 'Launched' : busy ? 'Launching…' : 'Fork with these settings'}
        </button>
      </div>
      {error ? <div className="error">{error}</div> : null}
      {launched ? (
        <div className="warnbox" role="status" data-testid="launch-warning">
          Launched; {launched.warning}. <Link href={launched.href}>Open the fork</Link>
        </div>
      ) : null}
    </div>
  );
}

/** A degraded run as a case study: evidence, generations around the onset, curves with the onset marked. */
export function CaseStudy({
  run,
  onset,
  details,
  metricKeys,
  lastGoodStep,
  canFork = true,
}: {
  run: CaseRun;
  onset: number;
  details: Degradation;
  metricKeys: string[];
  lastGoodStep: number | null;
  /** Viewers cannot launch: no fork form for them. */
  canFork?: boolean;
}) {
  const [series, setSeries] = useState<WireSeries[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const chartKeys = useMemo(() => CHART_KEYS.filter((k) => metricKeys.includes(k)), [metricKeys]);
  const distKeys = useMemo(() => metricKeys.filter((k) => k.startsWith('dist/')), [metricKeys]);
  useEffect(() => {
    const keys = [...chartKeys, ...distKeys];
    if (!keys.length) {
      setSeries([]);
      return;
    }
    fetchSeries({ runIds: [run.id], keys, buckets: 1000 })
      .then((s) => setSeries(s))
      .catch((e: Error) => setError(e.message));
  }, [run.id, chartKeys, distKeys]);

  const questions = [
    ...new Map(
      [...(details.parent ?? []), ...details.before, ...details.after].map((e) => [e.id, e.question]),
    ).entries(),
  ];
  const find = (list: Example[] | undefined, id: string) => list?.find((e) => e.id === id);
  const markers = [{ step: onset, label: `onset · step ${onset}` }];
  return (
    <>
      <h2>Evidence</h2>
      <table className="data panel" data-testid="evidence">
        <thead>
          <tr>
            <th>Signal</th>
            <th className="num">Value</th>
            <th className="num">Limit</th>
            <th className="num">Parent</th>
            <th className="num" title="questions the run got worse / better than its parent (paired test)">
              Worse / better
            </th>
            <th className="num" title="one-sided exact McNemar p, and the α this evaluation could spend">
              p (α)
            </th>
          </tr>
        </thead>
        <tbody>
          {details.evidence.map((e, i) => (
            <tr key={i}>
              <td>{SIGNALS[e.signal] ?? e.signal}</td>
              <td className="num bad-text">{fmtNumber(e.value)}</td>
              <td className="num">{fmtNumber(e.limit)}</td>
              <td className="num">{fmtNumber(e.parent)}</td>
              <td className="num">{e.worse !== undefined ? `${e.worse} / ${e.better ?? 0}` : '—'}</td>
              <td className="num">
                {e.p !== undefined
                  ? `${fmtNumber(e.p)} (${e.alphaSpent !== undefined ? fmtNumber(e.alphaSpent) : '—'})`
                  : '—'}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Generations around the onset</h2>
      {questions.length === 0 ? (
        <div className="muted">The detector kept no generations for this run.</div>
      ) : (
        <div className="panel" style={{ padding: 0, overflowX: 'auto' }}>
          <table className="data gens" data-testid="generations">
            <thead>
              <tr>
                <th>Question</th>
                <th>Parent (VFT)</th>
                <th>Before the onset</th>
                <th>At the onset (step {onset})</th>
              </tr>
            </thead>
            <tbody>
              {questions.map(([id, q]) => (
                <tr key={id}>
                  <td className="question">{q}</td>
                  <Generation ex={find(details.parent, id)} />
                  <Generation ex={find(details.before, id)} />
                  <Generation ex={find(details.after, id)} />
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Scores of positives and negatives</h2>
      <div className="panel">
        <div className="muted" style={{ marginBottom: 6 }}>
          Each candidate&apos;s score minus its group&apos;s lowest positive (medians, p10–p90 bands); the boundary
          constraint holds negatives at −β. Without a constraint the negatives keep falling — and the positives with
          them.
        </div>
        {series ? (
          <ScoreDistChart series={series.filter((s) => s.key.startsWith('dist/'))} onset={onset} />
        ) : (
          <div className="skeleton" style={{ height: 280 }} />
        )}
      </div>
      <h2>Curves</h2>
      {error ? <div className="error">Could not load metrics: {error}</div> : null}
      <div className="charts">
        {series
          ? series
              .filter((s) => !s.key.startsWith('dist/'))
              .map((s) => <MetricChart key={s.key} series={s} smoothing={0} logScale={false} markers={markers} />)
          : chartKeys.map((k) => <div key={k} className="skeleton" style={{ height: 240 }} />)}
      </div>
      {canFork ? (
        <>
          <h2>Fork a new run</h2>
          <ForkForm run={run} lastGoodStep={lastGoodStep} />
        </>
      ) : null}
    </>
  );
}
