/**
 * Curves of many runs, one line per group: on the union of the runs' steps, each group's mean and a band — the
 * min–max over its runs or the mean ± one standard deviation. A run without a point at a step is left out there.
 */
import type { ChartColumns } from './chart-math';

export interface GroupCurve {
  key: string;
  mean: (number | null)[];
  lo: (number | null)[];
  hi: (number | null)[];
  runs: number;
}

export function groupSeries(
  runs: readonly { runId: string; group: string; cols: ChartColumns }[],
  band: 'minmax' | 'std',
): { x: number[]; groups: GroupCurve[] } {
  const x = [...new Set(runs.flatMap((r) => r.cols.x))].sort((a, b) => a - b);
  const index = new Map(x.map((v, i) => [v, i]));
  const byGroup = new Map<string, (number | null)[][]>();
  for (const r of runs) {
    const row: (number | null)[] = new Array(x.length).fill(null);
    r.cols.x.forEach((xv, i) => (row[index.get(xv)!] = r.cols.y[i] ?? null));
    const rows = byGroup.get(r.group) ?? [];
    rows.push(row);
    byGroup.set(r.group, rows);
  }
  const groups: GroupCurve[] = [...byGroup].map(([key, rows]) => {
    const mean: (number | null)[] = [];
    const lo: (number | null)[] = [];
    const hi: (number | null)[] = [];
    for (let i = 0; i < x.length; i++) {
      const vals = rows.map((r) => r[i]).filter((v): v is number => v !== null && v !== undefined);
      if (!vals.length) {
        mean.push(null);
        lo.push(null);
        hi.push(null);
        continue;
      }
      const m = vals.reduce((a, b) => a + b, 0) / vals.length;
      mean.push(m);
      if (band === 'minmax') {
        lo.push(Math.min(...vals));
        hi.push(Math.max(...vals));
      } else {
        const sd = vals.length > 1 ? Math.sqrt(vals.reduce((a, b) => a + (b - m) ** 2, 0) / (vals.length - 1)) : 0;
        lo.push(m - sd);
        hi.push(m + sd);
      }
    }
    return { key, mean, lo, hi, runs: rows.length };
  });
  return { x, groups };
}

/** A palette that stays distinguishable for a dozen groups on a dark background. */
export const PALETTE = [
  '#6ea8fe',
  '#f5a524',
  '#3ecf8e',
  '#f16063',
  '#c084fc',
  '#22d3ee',
  '#facc15',
  '#fb7185',
  '#a3e635',
  '#94a3b8',
  '#f472b6',
  '#2dd4bf',
];
export const colorAt = (i: number) => PALETTE[i % PALETTE.length]!;
export const withAlpha = (hex: string, a: number) => {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${a})`;
};
