'use client';
import { useEffect, useMemo, useRef } from 'react';
import uPlot from 'uplot';
import {
  logSafe,
  remapX,
  smooth,
  toColumns,
  withWallTime,
  type ChartColumns,
  type WireSeries,
} from '../lib/chart-math';
import { fmtNumber } from '../lib/format';

export interface MetricChartProps {
  series: WireSeries;
  smoothing: number;
  logScale: boolean;
  /** Called with the visible step range after a drag-zoom, or null on reset (double-click). */
  onZoom?: (range: [number, number] | null) => void;
  /** Steps marked with a vertical line and a label (e.g. the onset of degradation). */
  markers?: { step: number; label: string }[];
  /** x-axis: the step (default), minutes of wall-clock time since the series' first point, or training tokens. */
  xMode?: 'step' | 'time' | 'tokens';
  /** For `tokens`: the run's cumulative token count by step (its `train/tokens` series). */
  xMap?: ChartColumns | null;
}

/** A rectangle in CSS pixels, relative to the chart's canvas. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Where a marker's label goes: right of its line, left of it when that would run past the plot, never outside. */
function labelLeft(lineX: number, width: number, pad: number, plotLeft: number, plotRight: number): number {
  const right = lineX + pad;
  const x = right + width <= plotRight ? right : lineX - pad - width;
  return Math.max(plotLeft, Math.min(x, plotRight - width));
}

/**
 * Draws each marker as a dashed vertical line with its label at the top, kept inside the plot area; reports the
 * label boxes it drew (what the run page's e2e test checks for clipping).
 */
function markerPlugin(markers: { step: number; label: string }[], drawn: (labels: Box[], plot: Box) => void) {
  return {
    hooks: {
      draw: [
        (u: uPlot) => {
          const ctx = u.ctx;
          const dpr = devicePixelRatio;
          const { left, top, width, height } = u.bbox;
          const boxes: Box[] = [];
          ctx.save();
          for (const m of markers) {
            const x = Math.round(u.valToPos(m.step, 'x', true));
            if (x < left || x > left + width) continue;
            ctx.strokeStyle = '#f16063';
            ctx.lineWidth = 1.5 * dpr;
            ctx.setLineDash([5 * dpr, 4 * dpr]);
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, top + height);
            ctx.stroke();
            ctx.setLineDash([]);
            // uPlot leaves the y axis' right alignment on the context: without these the label ran left of its
            // x and lost its first letters at the plot's edge
            ctx.textAlign = 'left';
            ctx.textBaseline = 'alphabetic';
            ctx.font = `${11 * dpr}px system-ui`;
            let text = m.label;
            while (text.length > 1 && ctx.measureText(text).width > width - 6 * dpr) text = `${text.slice(0, -2)}…`;
            const t = ctx.measureText(text);
            const w = Math.max(t.width, t.actualBoundingBoxRight) + Math.max(0, t.actualBoundingBoxLeft);
            const h = t.actualBoundingBoxAscent + t.actualBoundingBoxDescent;
            const lx = labelLeft(x, w, 4 * dpr, left + dpr, left + width - dpr); // dpr: room for the backdrop
            const ly = top + 3 * dpr + Math.max(0, t.actualBoundingBoxAscent);
            ctx.fillStyle = 'rgba(22,26,33,0.8)';
            ctx.fillRect(lx - dpr, ly - t.actualBoundingBoxAscent - dpr, w + 2 * dpr, h + 2 * dpr);
            ctx.fillStyle = '#f16063';
            ctx.fillText(text, lx + Math.max(0, t.actualBoundingBoxLeft), ly);
            boxes.push({ x: lx / dpr, y: (ly - t.actualBoundingBoxAscent) / dpr, w: w / dpr, h: h / dpr });
          }
          ctx.restore();
          drawn(boxes, { x: left / dpr, y: top / dpr, w: width / dpr, h: height / dpr });
        },
      ],
    },
  };
}

const ACCENT = '#6ea8fe';
/** Axis ticks of large values: 250K, 1.2M (the full value is in the legend). */
const COMPACT = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
const AXIS = { stroke: '#8b93a3', grid: { stroke: '#2a303b', width: 1 }, ticks: { stroke: '#2a303b' } };

/** One metric: the raw line (faint), the smoothed line, and — when bucketed — the min–max band that keeps spikes. */
export function MetricChart({
  series,
  smoothing,
  logScale,
  onZoom,
  markers,
  xMode = 'step',
  xMap = null,
}: MetricChartProps) {
  const el = useRef<HTMLDivElement>(null);
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const zoomCb = useRef(onZoom);
  zoomCb.current = onZoom;
  const cols = useMemo(() => {
    const c = toColumns(series);
    if (xMode === 'time') return withWallTime(c, series, series.times?.[0] ?? 0);
    if (xMode === 'tokens') return xMap ? remapX(c, xMap) : { ...c, x: [], y: [] };
    return c;
  }, [series, xMode, xMap]);
  const bucketed = cols.lo !== null;

  const data = useMemo(() => {
    const fix = logScale ? logSafe : (v: (number | null)[]) => v;
    const line = fix(cols.y);
    const out: (number | null)[][] = [cols.x, line, fix(smooth(cols.y, smoothing))];
    if (cols.lo && cols.hi) out.push(fix(cols.hi), fix(cols.lo));
    return out as uPlot.AlignedData;
  }, [cols, smoothing, logScale]);

  // (Re)create the plot when its shape changes: log scale, or raw ⇄ bucketed.
  useEffect(() => {
    const node = el.current;
    if (!node) return;
    const seriesOpts: uPlot.Series[] = [
      xMode === 'time'
        ? { label: 'minutes', value: (_u, v) => (v === null ? '—' : v.toFixed(2)) }
        : {
            label: xMode === 'tokens' ? 'tokens' : 'step',
            value: (_u, v) => (v === null ? '—' : Math.round(v).toLocaleString('en-US')),
          },
      {
        label: 'value',
        stroke: smoothing > 0 ? 'rgba(110,168,254,0.35)' : ACCENT,
        width: 1,
        value: (_u, v) => fmtNumber(v),
      },
      { label: 'smoothed', stroke: ACCENT, width: 2, show: smoothing > 0, value: (_u, v) => fmtNumber(v) },
    ];
    if (bucketed) {
      seriesOpts.push(
        { label: 'max', stroke: 'rgba(110,168,254,0.25)', width: 1, value: (_u, v) => fmtNumber(v) },
        { label: 'min', stroke: 'rgba(110,168,254,0.25)', width: 1, value: (_u, v) => fmtNumber(v) },
      );
    }
    const u = new uPlot(
      {
        width: node.clientWidth || 400,
        height: 220,
        scales: { x: { time: false }, y: { distr: logScale ? 3 : 1 } },
        series: seriesOpts,
        bands: bucketed ? [{ series: [3, 4], fill: 'rgba(110,168,254,0.12)' }] : [],
        axes: [
          AXIS,
          {
            ...AXIS,
            size: 60,
            values: (_u, ticks) => ticks.map((t) => (Math.abs(t) >= 1e4 ? COMPACT.format(t) : fmtNumber(t))),
          },
        ],
        legend: { live: true },
        plugins:
          markers?.length && xMode === 'step'
            ? [
                markerPlugin(markers, (labels, plot) =>
                  box.current?.setAttribute('data-marker-box', JSON.stringify({ labels, plot })),
                ),
              ]
            : [],
        cursor: { drag: { x: true, y: false, setScale: true } },
        hooks: {
          setSelect: [
            (p) => {
              if (p.select.width > 0 && xMode === 'step') {
                const lo = p.posToVal(p.select.left, 'x');
                const hi = p.posToVal(p.select.left + p.select.width, 'x');
                zoomCb.current?.([Math.max(0, Math.floor(lo)), Math.ceil(hi)]);
              }
            },
          ],
        },
      },
      data,
      node,
    );
    u.over.addEventListener('dblclick', () => zoomCb.current?.(null));
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: node.clientWidth, height: 220 }));
    ro.observe(node);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- data flows in through the effect below
  }, [logScale, bucketed, smoothing > 0, JSON.stringify(markers ?? []), xMode]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  const lastVal = cols.y.length ? cols.y[cols.y.length - 1] : null;
  return (
    <div
      ref={box}
      className="chart"
      data-testid="metric-chart"
      data-key={series.key}
      data-points={cols.points}
      data-markers={markers?.map((m) => m.step).join(',') ?? ''}
    >
      <div className="title">
        <span className="key" title={series.key}>
          {series.key}
        </span>
        <span className="last">
          {cols.points.toLocaleString('en-US')} pts · last {fmtNumber(lastVal)}
          {series.mode === 'buckets' ? ` · ${series.width}-step buckets` : ''}
        </span>
      </div>
      {cols.nonFinite > 0 ? (
        <div className="warn">{cols.nonFinite} non-finite point(s) (NaN/±Inf) shown as gaps</div>
      ) : null}
      <div ref={el} />
    </div>
  );
}
