/** The runs table's state lives in the URL so any view can be shared as a link. Pure; tested. */

export interface RunsView {
  status: string[];
  method: string[];
  tags: string[];
  q: string;
  sort: string;
  dir: 'asc' | 'desc';
  cursor: string | null;
}

type Params = Record<string, string | string[] | undefined>;

const list = (v: string | string[] | undefined) =>
  (Array.isArray(v) ? v : v ? [v] : [])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v) ?? '';

export function parseRunsView(p: Params): RunsView {
  return {
    status: list(p['status']),
    method: list(p['method']),
    tags: list(p['tags']),
    q: one(p['q']),
    sort: one(p['sort']) || 'createdAt',
    dir: one(p['dir']) === 'asc' ? 'asc' : 'desc',
    cursor: one(p['cursor']) || null,
  };
}

export function runsViewHref(base: string, v: RunsView, patch: Partial<RunsView> = {}): string {
  const n = { ...v, ...patch };
  const qs = new URLSearchParams();
  if (n.status.length) qs.set('status', n.status.join(','));
  if (n.method.length) qs.set('method', n.method.join(','));
  if (n.tags.length) qs.set('tags', n.tags.join(','));
  if (n.q) qs.set('q', n.q);
  if (n.sort !== 'createdAt') qs.set('sort', n.sort);
  if (n.dir !== 'desc') qs.set('dir', n.dir);
  if (n.cursor) qs.set('cursor', n.cursor);
  const s = qs.toString();
  return s ? `${base}?${s}` : base;
}

/** Clicking a header sorts by it, descending first; clicking the sorted header flips the direction. */
export function sortToggle(v: RunsView, column: string): Partial<RunsView> {
  if (v.sort === column) return { sort: column, dir: v.dir === 'desc' ? 'asc' : 'desc', cursor: null };
  return { sort: column, dir: 'desc', cursor: null };
}
