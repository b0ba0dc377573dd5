/**
 * The paper-style results table: one row per method × constraint (× β for the boundary), mean ± std over seeds of
 * the final metrics the worker writes to each run's summary, exportable as CSV, Markdown and LaTeX.
 */
import { armOf, compareArms, type Arm } from '@aft/aft-core/stats';
import type { RouterOutputs } from '@aft/api';
import { csvCell } from '@aft/db/csv';
import { isRecord, recordOf } from './json';

/**
 * What the table reads of a run: fields every listing of runs returns (runs.list, runs.get, sweeps.get). Config and
 * summary are JSON each listing types its own way, so they are read as such (json.ts).
 */
export type ResultRun = Pick<
  RouterOutputs['runs']['list']['items'][number],
  'id' | 'name' | 'method' | 'constraint' | 'seed' | 'status' | 'parentRunId'
> & { config: unknown; summary?: unknown };

export const RESULT_METRICS = [
  { key: 'test/task_accuracy', label: 'Task acc. %', scale: 100, digits: 1, higherIsBetter: true },
  { key: 'test/assessment_accuracy', label: 'Assess. acc. %', scale: 100, digits: 1, higherIsBetter: true },
  { key: 'test/score_gap', label: 'Pos−neg gap', scale: 1, digits: 3, higherIsBetter: true },
  { key: 'test/ref_perplexity', label: 'Ref. ppl', scale: 1, digits: 3, higherIsBetter: false },
  { key: 'test/malformed_rate', label: 'Malformed %', scale: 100, digits: 1, higherIsBetter: false },
] as const;

export interface Stat {
  mean: number;
  std: number;
  n: number;
}
export interface ResultRow {
  group: string;
  label: string;
  method: string;
  constraint: string;
  beta: number | null;
  runs: number;
  finished: number;
  degraded: number;
  stats: Record<string, Stat | null>;
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

// one grouping of runs into arms for this table, the paired comparison and the API that computes it
export { armOf as groupOf, betaOf } from '@aft/aft-core/stats';

export function stat(xs: readonly number[]): Stat | null {
  if (!xs.length) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std, n: xs.length };
}

export function resultRows(runs: readonly ResultRun[]): ResultRow[] {
  const groups = new Map<string, { g: Arm; runs: ResultRun[] }>();
  for (const r of runs) {
    const g = armOf(r);
    const e = groups.get(g.key) ?? { g, runs: [] };
    e.runs.push(r);
    groups.set(g.key, e);
  }
  return [...groups.values()]
    .sort((a, b) => compareArms(a.g, b.g))
    .map(({ g, runs: rs }) => {
      const done = rs.filter((r) => r.status === 'succeeded');
      return {
        group: g.key,
        label: g.label,
        method: g.method,
        constraint: g.constraint,
        beta: g.beta,
        runs: rs.length,
        finished: done.length,
        degraded: rs.filter((r) => recordOf(r.summary)['degraded'] === true).length,
        stats: Object.fromEntries(
          RESULT_METRICS.map((m) => [
            m.key,
            stat(done.map((r) => num(recordOf(r.summary)[m.key])).filter((v): v is number => v !== null)),
          ]),
        ),
      };
    });
}

const pm = (s: Stat | null, scale: number, digits: number, sep = ' ± ') =>
  s ? `${(s.mean * scale).toFixed(digits)}${sep}${(s.std * scale).toFixed(digits)}` : '—';

export function toCsv(rows: readonly ResultRow[]): string {
  const head = [
    'method',
    'constraint',
    'beta',
    'runs',
    'finished',
    'degraded',
    ...RESULT_METRICS.flatMap((m) => [`${m.key} mean`, `${m.key} std`, `${m.key} n`]),
  ];
  const lines = rows.map((r) =>
    [
      r.method,
      r.constraint,
      r.beta ?? '',
      r.runs,
      r.finished,
      r.degraded,
      ...RESULT_METRICS.flatMap((m) => {
        const s = r.stats[m.key];
        return s ? [s.mean, s.std, s.n] : ['', '', 0];
      }),
    ]
      .map(csvCell)
      .join(','),
  );
  return [head.map(csvCell).join(','), ...lines].join('\n') + '\n';
}

export function toMarkdown(rows: readonly ResultRow[]): string {
  const head = `| Method | Runs | ${RESULT_METRICS.map((m) => m.label).join(' | ')} | Degraded |`;
  const sep = `|---|---:|${RESULT_METRICS.map(() => '---:').join('|')}|---:|`;
  const lines = rows.map(
    (r) =>
      `| ${r.label} | ${r.finished}/${r.runs} | ${RESULT_METRICS.map((m) => pm(r.stats[m.key] ?? null, m.scale, m.digits)).join(' | ')} | ${r.degraded} |`,
  );
  return [head, sep, ...lines].join('\n') + '\n';
}

export function toLatex(rows: readonly ResultRow[]): string {
  const esc = (s: string) =>
    s
      .replace(/([&%$#_{}])/g, '\\$1')
      .replace(/β/g, '$\\beta$')
      .replace(/−/g, '--');
  const cols = `l${'r'.repeat(RESULT_METRICS.length + 1)}`;
  const head = `Method & Runs & ${RESULT_METRICS.map((m) => esc(m.label)).join(' & ')} \\\\`;
  const lines = rows.map(
    (r) =>
      `${esc(r.label)} & ${r.finished}/${r.runs} & ${RESULT_METRICS.map((m) => pm(r.stats[m.key] ?? null, m.scale, m.digits, ' $\\pm$ ')).join(' & ')} \\\\`,
  );
  return (
    ['\\begin{tabular}{' + cols + '}', '\\toprule', head, '\\midrule', ...lines, '\\bottomrule', '\\end{tabular}'].join(
      '\n',
    ) + '\n'
  );
}

/**
 * Where a run trained, not what it trained (docs/architecture.md, "GPU jobs"): the worker's params (`backend…`,
 * `worker.…`) and what it asked of its worker (`resources…`). Runs of one experiment differ in these by chance.
 */
const isPlacement = (key: string) => /^(backend|resources)(\.|$)|^worker\./.test(key);

/**
 * Config keys whose values differ between runs (flattened, dotted), with each run's value; placement keys left out.
 */
export function configDiff(runs: readonly { id: string; config: unknown }[]): { key: string; values: string[] }[] {
  const flat = (o: unknown, prefix = ''): [string, unknown][] =>
    isRecord(o) ? Object.entries(o).flatMap(([k, v]) => flat(v, prefix ? `${prefix}.${k}` : k)) : [[prefix, o]];
  const maps = runs.map(
    (r) => new Map(flat(r.config).flatMap(([k, v]) => (isPlacement(k) ? [] : [[k, JSON.stringify(v)] as const]))),
  );
  const keys = [...new Set(maps.flatMap((m) => [...m.keys()]))].sort();
  return keys
    .map((key) => ({ key, values: maps.map((m) => m.get(key) ?? '—') }))
    .filter((d) => new Set(d.values).size > 1);
}
