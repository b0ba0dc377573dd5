import Link from 'next/link';
import type { ReactNode } from 'react';
import type { RouterOutputs } from '@aft/api';
import { fmtAgo, fmtDuration, fmtNumber } from '../lib/format';
import { HIDEABLE_COLUMNS, type HideableColumn } from '../lib/runs-url';
import { statusTitle, trainedOn, trainedOnText, type TrainedOn } from '../lib/trained-on';
import { StatusBadge } from './ui';

type ListedRun = RouterOutputs['runs']['list']['items'][number];
type Listed =
  'id' | 'name' | 'method' | 'constraint' | 'status' | 'tags' | 'summary' | 'createdAt' | 'startedAt' | 'finishedAt';
/** What the table shows of a run of runs.list; all that the page sends (a run's config can be large). */
export type RunRow = Pick<ListedRun, Listed> & { trainedOn: TrainedOn | null; statusTitle?: string };

/** A run as the table keeps it: from the server (dates as Date) or from runs.list over HTTP (dates as strings). */
export const tableRow = <R extends Record<Listed | 'config' | 'backend', unknown>>(
  r: R,
): Pick<R, Listed> & { trainedOn: TrainedOn | null; statusTitle?: string } => ({
  id: r.id,
  name: r.name,
  method: r.method,
  constraint: r.constraint,
  status: r.status,
  tags: r.tags,
  summary: r.summary,
  createdAt: r.createdAt,
  startedAt: r.startedAt,
  finishedAt: r.finishedAt,
  trainedOn: trainedOn(r.config, typeof r.backend === 'string' ? r.backend : null),
  statusTitle: statusTitle(String(r.status), r.config),
});

/** An aggregate row: the loaded runs of one method × constraint. */
export interface RunGroup {
  key: string;
  label: string;
  runs: RunRow[];
}

/** What a cell shows, and its whole text where the column may cut it (shown as the cell's title). */
export interface Cell {
  body: ReactNode;
  title?: string;
}

export interface RowContext {
  now: number;
  selected: boolean;
  toggle: () => void;
  tagHref: (tag: string) => string;
}

/**
 * One column of the runs table. The header and every row draw the same list of columns into the same grid template,
 * and every track's width is fixed (or, for the name, a fixed minimum sharing the spare width) — never sized by
 * content — so a header always spans exactly its cells, whatever a row holds.
 */
export interface Column {
  id: 'select' | 'name' | HideableColumn | `summary.${string}`;
  label: string;
  track: string;
  /** The track's least width in px; the table scrolls sideways when the sum is wider than the page. */
  min: number;
  sort?: string;
  numeric?: boolean;
  /** A class for its cells (beside `td`, and `num` when numeric). */
  className?: string;
  run: (r: RunRow, ctx: RowContext) => Cell;
  group?: (g: RunGroup) => Cell;
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const fixed = (px: number) => ({ track: `${px}px`, min: px });
const plain = (text: string): Cell => ({ body: text, title: text });

/** The always-shown and the hideable built-in columns, in the table's order. */
const BUILT_IN: Column[] = [
  {
    id: 'select',
    label: '',
    ...fixed(34),
    run: (r, ctx) => ({
      body: <input type="checkbox" checked={ctx.selected} onChange={ctx.toggle} aria-label={`select ${r.name}`} />,
    }),
  },
  {
    id: 'status',
    label: 'Status',
    ...fixed(122),
    sort: 'status',
    run: (r) => ({ body: <StatusBadge status={r.status} />, title: r.statusTitle }),
    group: (g) => {
      const counts = new Map<string, number>();
      g.runs.forEach((r) => counts.set(r.status, (counts.get(r.status) ?? 0) + 1));
      return plain([...counts].map(([s, n]) => `${n} ${s}`).join(', '));
    },
  },
  {
    id: 'name',
    label: 'Name',
    track: 'minmax(220px, 1fr)',
    min: 220,
    sort: 'name',
    run: (r) => ({ body: <Link href={`/runs/${r.id}`}>{r.name}</Link>, title: r.name }),
    group: (g) => ({
      body: (
        <>
          <b>{g.label}</b> · {g.runs.length} runs
        </>
      ),
      title: `${g.label} · ${g.runs.length} runs`,
    }),
  },
  { id: 'method', label: 'Method', ...fixed(90), sort: 'method', run: (r) => plain(r.method) },
  { id: 'constraint', label: 'Constraint', ...fixed(100), run: (r) => plain(r.constraint) },
  {
    id: 'tags',
    label: 'Tags',
    ...fixed(170),
    className: 'tags',
    run: (r, ctx) => ({
      body: r.tags.map((t) => (
        <a key={t} className="tag" href={ctx.tagHref(t)}>
          {t}
        </a>
      )),
      title: r.tags.join(', ') || undefined,
    }),
  },
  {
    id: 'created',
    label: 'Created',
    ...fixed(112),
    sort: 'createdAt',
    run: (r, ctx) => ({ body: fmtAgo(r.createdAt, ctx.now), title: new Date(r.createdAt).toISOString() }),
  },
  {
    id: 'runtime',
    label: 'Runtime',
    ...fixed(90),
    numeric: true,
    run: (r, ctx) => {
      const start = r.startedAt ? new Date(r.startedAt).getTime() : null;
      const end = r.finishedAt ? new Date(r.finishedAt).getTime() : r.status === 'running' ? ctx.now : null;
      return { body: start && end ? fmtDuration(end - start) : '—' };
    },
  },
  {
    id: 'trained',
    label: 'Trained on',
    ...fixed(220),
    className: 'trained',
    run: (r) => trainedOnText(r.trainedOn),
  },
];

/**
 * Wide enough for a metric key on two lines (it wraps after a `/`), its longest part on one, and a sort arrow;
 * at most 200 px, where a longer key wraps further.
 */
export function metricWidth(key: string): number {
  const longestPart = Math.max(...key.split('/').map((s) => s.length + 1));
  const chars = Math.max(longestPart, Math.ceil(key.length / 2) + 2);
  return Math.min(200, Math.max(96, Math.round(chars * 7 + 24)));
}

function metricColumn(key: string): Column {
  return {
    id: `summary.${key}`,
    label: key,
    ...fixed(metricWidth(key)),
    sort: `summary.${key}`,
    numeric: true,
    run: (r) => {
      const text = fmtNumber(r.summary[key]);
      return { body: text, title: text.length > 10 ? text : undefined };
    },
    group: (g) => {
      const vals = g.runs.map((r) => num(r.summary[key])).filter((x): x is number => x !== null);
      return {
        body: vals.length ? `μ ${fmtNumber(vals.reduce((a, b) => a + b, 0) / vals.length)}` : '',
        title: 'mean over the loaded runs of the group',
      };
    },
  };
}

/** The built-in columns a view may hide, for the column chooser. */
export const HIDEABLE: { id: HideableColumn; label: string }[] = HIDEABLE_COLUMNS.map((id) => ({
  id,
  label: BUILT_IN.find((c) => c.id === id)!.label,
}));

/** The table's columns: the built-ins not hidden, then one per chosen summary metric. */
export function runColumns(metrics: readonly string[], hide: readonly HideableColumn[]): Column[] {
  return [...BUILT_IN.filter((c) => !(hide as readonly string[]).includes(c.id)), ...metrics.map(metricColumn)];
}

/** A metric key as a header: it may break after each `/`, so `dataset_hard/test/task_accuracy` wraps readably. */
export function breakable(label: string): ReactNode {
  const parts = label.split('/');
  return parts.map((p, i) =>
    i < parts.length - 1 ? (
      <span key={i}>
        {p}/<wbr />
      </span>
    ) : (
      p
    ),
  );
}
