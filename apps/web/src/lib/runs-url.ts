/** The runs table's state lives in the URL so any view can be shared as a link. Pure; tested. */

export interface RunsView {
  status: string[];
  method: string[];
  constraint: string[];
  tags: string[];
  q: string;
  /** Range filters on summary metrics (`test/task_accuracy>=0.4`) or config values (`config.lr<0.001`). */
  filters: string[];
  sort: string;
  dir: 'asc' | 'desc';
  cursor: string | null;
  /** Summary metrics shown as columns; empty = the first eight found. */
  cols: string[];
  /** Built-in columns hidden from the table (`hide=tags,runtime`); none by default. */
  hide: HideableColumn[];
  /** Group rows by method × constraint with an aggregate row per group. */
  group: boolean;
}

/** The built-in columns a view may hide, in the table's order (the selection box and the name always show). */
export const HIDEABLE_COLUMNS = ['status', 'method', 'constraint', 'tags', 'created', 'runtime', 'trained'] as const;
export type HideableColumn = (typeof HIDEABLE_COLUMNS)[number];
/** Known names only, each once, in the table's order: one view has one URL, and an edited URL cannot add columns. */
const hidden = (names: readonly string[]): HideableColumn[] => HIDEABLE_COLUMNS.filter((c) => names.includes(c));

type Params = Record<string, string | string[] | undefined>;

const list = (v: string | string[] | undefined, sep = ',') =>
  (Array.isArray(v) ? v : v ? [v] : [])
    .flatMap((s) => s.split(sep))
    .map((s) => s.trim())
    .filter(Boolean);
const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v) ?? '';

export function parseRunsView(p: Params): RunsView {
  return {
    status: list(p['status']),
    method: list(p['method']),
    constraint: list(p['constraint']),
    tags: list(p['tags']),
    q: one(p['q']),
    filters: list(p['f'], ';'),
    sort: one(p['sort']) || 'createdAt',
    dir: one(p['dir']) === 'asc' ? 'asc' : 'desc',
    cursor: one(p['cursor']) || null,
    cols: list(p['cols']),
    hide: hidden(list(p['hide'])),
    group: one(p['group']) === '1',
  };
}

export function runsViewHref(base: string, v: RunsView, patch: Partial<RunsView> = {}): string {
  const n = { ...v, ...patch };
  const qs = new URLSearchParams();
  if (n.status.length) qs.set('status', n.status.join(','));
  if (n.method.length) qs.set('method', n.method.join(','));
  if (n.constraint.length) qs.set('constraint', n.constraint.join(','));
  if (n.tags.length) qs.set('tags', n.tags.join(','));
  if (n.q) qs.set('q', n.q);
  if (n.filters.length) qs.set('f', n.filters.join(';'));
  if (n.sort !== 'createdAt') qs.set('sort', n.sort);
  if (n.dir !== 'desc') qs.set('dir', n.dir);
  if (n.cursor) qs.set('cursor', n.cursor);
  if (n.cols.length) qs.set('cols', n.cols.join(','));
  if (n.hide.length) qs.set('hide', hidden(n.hide).join(','));
  if (n.group) qs.set('group', '1');
  const s = qs.toString();
  return s ? `${base}?${s}` : base;
}

/** Clicking a header sorts by it, descending first; clicking the sorted header flips the direction. */
export function sortToggle(v: RunsView, column: string): Partial<RunsView> {
  if (v.sort === column) return { sort: column, dir: v.dir === 'desc' ? 'asc' : 'desc', cursor: null };
  return { sort: column, dir: 'desc', cursor: null };
}

export type FilterOp = 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte';
export interface ValueFilter {
  on: 'summary' | 'config';
  path: string;
  op: FilterOp;
  value: number | string | boolean;
}

const OPS: [string, FilterOp][] = [
  ['>=', 'gte'],
  ['<=', 'lte'],
  ['!=', 'ne'],
  ['>', 'gt'],
  ['<', 'lt'],
  ['=', 'eq'],
];

/**
 * `test/task_accuracy>=0.4` filters on a summary metric, `config.lr<0.001` on a config value. Returns an error
 * message for anything else.
 */
export function parseFilter(text: string): ValueFilter | string {
  for (const [sym, op] of OPS) {
    const i = text.indexOf(sym);
    if (i <= 0) continue;
    const lhs = text.slice(0, i).trim();
    const rhs = text.slice(i + sym.length).trim();
    if (!rhs) return `"${text}": give a value after ${sym}`;
    const on = lhs.startsWith('config.') ? 'config' : 'summary';
    const path = on === 'config' ? lhs.slice('config.'.length) : lhs.replace(/^summary\./, '');
    const n = Number(rhs);
    const value =
      rhs === 'true' ? true : rhs === 'false' ? false : Number.isFinite(n) ? n : rhs.replace(/^"(.*)"$/, '$1');
    if (typeof value === 'string' && !['eq', 'ne'].includes(op)) return `"${text}": ${sym} needs a number`;
    return { on, path, op, value };
  }
  return `"${text}" is not a filter; write metric>=value (e.g. test/task_accuracy>=0.4) or config.key=value`;
}
