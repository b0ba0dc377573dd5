/** Display helpers shared by server and client components. Pure. */
import { isRecord } from './json';

export function fmtNumber(v: unknown): string {
  if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') return String(v);
  if (typeof v !== 'number') return v === null || v === undefined ? '—' : String(v);
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(3);
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return v.toPrecision(4).replace(/\.?0+$/, '');
}

export function fmtDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${m % 60}m`;
}

export function fmtAgo(d: Date | string | null | undefined, now = Date.now()): string {
  if (!d) return '—';
  const t = typeof d === 'string' ? Date.parse(d) : d.getTime();
  return `${fmtDuration(now - t)} ago`;
}

/** Flattens a nested config into dotted keys: { optimizer: { lr: 1 } } → [['optimizer.lr', 1]]. */
export function flatten(obj: unknown, prefix = ''): [string, unknown][] {
  if (isRecord(obj)) {
    const entries = Object.entries(obj);
    if (entries.length === 0 && prefix) return [[prefix, {}]];
    return entries.flatMap(([k, v]) => flatten(v, prefix ? `${prefix}.${k}` : k));
  }
  return [[prefix, obj]];
}
