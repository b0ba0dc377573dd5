'use client';
import { usePathname, useSearchParams } from 'next/navigation';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { RouterOutputs } from '@aft/api';
import { fetchSeries, trpc } from '../lib/trpc';
import { toColumns, type WireSeries } from '../lib/chart-math';
import { PROGRESS_PREFIX, progressOf } from '@aft/contracts';
import { fmtDuration, fmtNumber } from '../lib/format';
import { recordOf } from '../lib/json';
import { MetricChart } from './MetricChart';
import { MetricSections } from './MetricSections';
import { StatusBadge } from './ui';

/** One message of the run's live subscription (runs.onUpdate), out of its tracked envelope. */
type RunUpdate = RouterOutputs['runs']['onUpdate'] extends AsyncIterable<{ data: infer D }> ? D : never;
/** What the live view draws: the parts of an update the run page also reads for the first render. */
export type LiveState = Pick<RunUpdate, 'status' | 'summary' | 'error' | 'writeSeq' | 'metrics'>;

const REFRESH_MS = 1_000;

/**
 * The live half of the run page (a data container): subscribes to the run over SSE, refetches the series of
 * the keys that grew (at most once a second), and keeps chart state — smoothing, log scale — in the URL.
 */
export function LiveRun({
  runId,
  initial,
  markers = [],
  canCancel = true,
}: {
  runId: string;
  initial: LiveState;
  markers?: { step: number; label: string }[];
  /** Viewers cannot cancel: no button for them. */
  canCancel?: boolean;
}) {
  const pathname = usePathname();
  const params = useSearchParams();
  const smoothing = Math.min(Math.max(Number(params.get('smooth') ?? '0') || 0, 0), 0.99);
  const logScale = params.get('log') === '1';
  const xParam = params.get('x');
  const xMode = xParam === 'time' || xParam === 'tokens' ? xParam : 'step';
  const xRef = useRef(xMode);
  xRef.current = xMode;

  const [state, setState] = useState<LiveState>(initial);
  const [connected, setConnected] = useState(false);
  const [series, setSeries] = useState<Record<string, WireSeries>>({});
  const [zoom, setZoom] = useState<Record<string, [number, number] | null>>({});
  const [loadError, setLoadError] = useState<string | null>(null);
  const fetched = useRef<Record<string, number>>({});
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const latest = useRef(state);
  latest.current = state;
  const zoomRef = useRef(zoom);
  zoomRef.current = zoom;

  // The history API, not router.replace: these parameters only change the view, and Next syncs
  // useSearchParams with replaceState without asking the server to render the page again (once per keystroke).
  const setParam = useCallback(
    (k: string, v: string | null) => {
      const q = new URLSearchParams(window.location.search);
      if (v === null) q.delete(k);
      else q.set(k, v);
      const qs = q.toString();
      window.history.replaceState(null, '', qs ? `${pathname}?${qs}` : pathname);
    },
    [pathname],
  );

  const refresh = useCallback(async () => {
    timer.current = null;
    const stale = latest.current.metrics.filter(
      (m) => (fetched.current[m.key] ?? -1) < m.lastStep && !zoomRef.current[m.key],
    );
    if (!stale.length) return;
    try {
      const res = await fetchSeries({
        runIds: [runId],
        keys: stale.map((m) => m.key),
        buckets: 1000,
        withTimes: xRef.current === 'time',
      });
      for (const m of stale) fetched.current[m.key] = m.lastStep;
      setSeries((prev) => ({ ...prev, ...Object.fromEntries(res.map((s) => [s.key, s])) }));
      setLoadError(null);
    } catch (e) {
      setLoadError((e as Error).message);
    }
  }, [runId]);

  const schedule = useCallback(() => {
    if (!timer.current) timer.current = setTimeout(() => void refresh(), REFRESH_MS);
  }, [refresh]);

  useEffect(() => {
    const sub = trpc.runs.onUpdate.subscribe(
      { runId },
      {
        onStarted: () => setConnected(true),
        onData: (msg) => {
          setState(msg.data);
          latest.current = msg.data;
          schedule();
        },
        onError: () => setConnected(false),
        onConnectionStateChange: (s) => setConnected(s.state === 'pending'),
      },
    );
    return () => {
      sub.unsubscribe();
      if (timer.current) clearTimeout(timer.current);
    };
  }, [runId, refresh, schedule]);

  // a new x-axis needs the series again (with wall times)
  useEffect(() => {
    fetched.current = {};
    void refresh();
  }, [xMode, refresh]);

  const onZoom = useCallback(
    async (key: string, range: [number, number] | null) => {
      setZoom((z) => ({ ...z, [key]: range }));
      try {
        const [s] = await fetchSeries({
          runIds: [runId],
          keys: [key],
          buckets: 1000,
          ...(range ? { minStep: range[0], maxStep: range[1] } : {}),
        });
        if (s) setSeries((prev) => ({ ...prev, [key]: s }));
        if (!range) fetched.current[key] = latest.current.metrics.find((m) => m.key === key)?.lastStep ?? -1;
      } catch (e) {
        setLoadError((e as Error).message);
      }
    },
    [runId],
  );

  // progress/* keys feed the progress bar, not charts
  const keys = useMemo(
    () => state.metrics.map((m) => m.key).filter((k) => !k.startsWith(PROGRESS_PREFIX)),
    [state.metrics],
  );
  const hasTokens = keys.includes('train/tokens');
  const tokenSeries = series['train/tokens'];
  const tokenMap = useMemo(() => (tokenSeries ? toColumns(tokenSeries) : null), [tokenSeries]);
  const summary = recordOf(state.summary);
  const progress = progressOf(summary, state.status);
  const finals = Object.entries(summary).filter(([k]) => !k.startsWith(PROGRESS_PREFIX));
  const [canceling, setCanceling] = useState(false);
  const cancel = async () => {
    setCanceling(true);
    try {
      await trpc.runs.cancel.mutate({ id: runId });
    } catch (e) {
      setLoadError((e as Error).message);
    } finally {
      setCanceling(false);
    }
  };
  return (
    <>
      {progress ? (
        <div className="progress panel" data-testid="progress">
          <div className="bar">
            <div style={{ width: `${(100 * progress.step) / Math.max(progress.total, 1)}%` }} />
          </div>
          <span className="mono">
            {progress.phase} · step {progress.step.toLocaleString()} / {progress.total.toLocaleString()}
            {progress.etaSeconds !== null ? ` · ETA ${fmtDuration(progress.etaSeconds * 1000)}` : ''}
          </span>
        </div>
      ) : null}
      <div className="toolbar">
        <StatusBadge status={state.status} />
        {canCancel && (state.status === 'queued' || state.status === 'running') ? (
          <button type="button" className="danger" disabled={canceling} onClick={() => void cancel()}>
            {canceling ? 'Canceling…' : 'Cancel run'}
          </button>
        ) : null}
        <span className={`live ${connected ? 'on' : ''}`} data-testid="live-indicator">
          {connected ? 'live' : 'connecting…'}
        </span>
        <label>
          Smoothing
          <input
            type="range"
            min={0}
            max={0.99}
            step={0.01}
            value={smoothing}
            aria-label="smoothing"
            onChange={(e) => setParam('smooth', e.target.value === '0' ? null : e.target.value)}
          />
          <span className="mono">{smoothing.toFixed(2)}</span>
        </label>
        <label>
          <input type="checkbox" checked={logScale} onChange={(e) => setParam('log', e.target.checked ? '1' : null)} />{' '}
          Log scale
        </label>
        <label>
          x-axis{' '}
          <select
            value={xMode}
            aria-label="x-axis"
            onChange={(e) => {
              fetched.current = {};
              setParam('x', e.target.value === 'step' ? null : e.target.value);
            }}
          >
            <option value="step">step</option>
            <option value="time">wall time (minutes)</option>
            <option value="tokens" disabled={!hasTokens}>
              training tokens{hasTokens ? '' : ' (not logged)'}
            </option>
          </select>
        </label>
        <span>Drag on a chart to zoom (raw points when close enough); double-click to reset.</span>
      </div>
      {state.error ? (
        <div className="error" style={{ marginBottom: 12 }}>
          {state.error}
        </div>
      ) : null}
      {loadError ? (
        <div className="error" style={{ marginBottom: 12 }}>
          Could not load metrics: {loadError}
        </div>
      ) : null}
      {keys.length === 0 ? (
        <div className="empty">No metrics logged yet. Charts appear here as soon as the run logs its first point.</div>
      ) : (
        <MetricSections
          keys={keys}
          filterParam={params.get('filter')}
          collapsedParam={params.get('collapsed')}
          setParam={setParam}
          chart={(key) =>
            series[key] ? (
              <MetricChart
                key={key}
                series={series[key]!}
                smoothing={smoothing}
                logScale={logScale}
                markers={markers}
                xMode={xMode}
                xMap={tokenMap}
                onZoom={(r) => void onZoom(key, r)}
              />
            ) : (
              <div key={key} className="chart">
                <div className="title">
                  <span className="key" title={key}>
                    {key}
                  </span>
                </div>
                <div className="skeleton" style={{ height: 220 }} />
              </div>
            )
          }
        />
      )}
      <h2>Summary</h2>
      {finals.length === 0 ? (
        <div className="muted">No summary yet (set with run.setSummary).</div>
      ) : (
        <dl className="kv panel" data-testid="summary">
          {finals.map(([k, v]) => (
            <div key={k} style={{ display: 'contents' }}>
              <dt>{k}</dt>
              <dd>{fmtNumber(v)}</dd>
            </div>
          ))}
        </dl>
      )}
    </>
  );
}
