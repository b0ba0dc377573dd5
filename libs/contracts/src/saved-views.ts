/**
 * Saved views: a named URL query of a project's runs table or of the compare page, shared with the team. Both
 * pages keep their whole state in the query string, so a view is that string, checked here against the parameters
 * its page reads. The API validates with it; the dashboard uses the same lists to pick what it saves from the URL.
 */
import { z } from 'zod';
import { pgText } from './text';

export const SAVED_VIEW_KINDS = ['runs', 'compare'] as const;
export type SavedViewKind = (typeof SAVED_VIEW_KINDS)[number];

/**
 * The query parameters each page reads (runs: apps/web/src/lib/runs-url.ts; compare: apps/web/src/app/compare).
 * A page that learns a new parameter adds it here, or its views cannot keep it. The runs table's `cursor` is left
 * out on purpose: a view opens at the first page.
 */
export const SAVED_VIEW_PARAMS: Readonly<Record<SavedViewKind, readonly string[]>> = {
  runs: ['status', 'method', 'constraint', 'tags', 'q', 'f', 'sort', 'dir', 'cols', 'hide', 'group'],
  compare: ['sweep', 'project', 'runs', 'control', 'paired', 'chart', 'show', 'band', 'parents'],
};

/** What the compare page compares: a view of it must name one of these. */
const COMPARE_SOURCES = ['sweep', 'project', 'runs'];

export const SAVED_VIEW_LIMITS = {
  /** The stored query string, in UTF-8 bytes as it is sent in a URL (percent-encoded). */
  queryBytes: 4096,
  /** One parameter's value, in characters before encoding. */
  valueChars: 2000,
  params: 40,
  nameChars: 100,
  /** Views of one kind in one project: the menu lists them all. */
  perProjectKind: 100,
} as const;

export const savedViewName = pgText
  .trim()
  .min(1, 'a view name must not be empty')
  .max(SAVED_VIEW_LIMITS.nameChars, `a view name is at most ${SAVED_VIEW_LIMITS.nameChars} characters`);

/**
 * Checks `raw` (with or without its leading `?`) as a query of a `kind` page; returns the normalized query string,
 * or the reason it is refused. Normalized through URLSearchParams so what is stored is exactly what is redirected to.
 */
export function normalizeViewQuery(kind: SavedViewKind, raw: string): { query: string } | { error: string } {
  const text = raw.startsWith('?') ? raw.slice(1) : raw;
  // bounded before parsing: the parse is linear, but a 4 KB view has no business holding megabytes
  if (text.length > SAVED_VIEW_LIMITS.queryBytes * 3) return { error: tooLong() };
  const params = new URLSearchParams(text);
  const allowed = SAVED_VIEW_PARAMS[kind];
  let count = 0;
  for (const [name, value] of params) {
    if (!allowed.includes(name)) {
      return {
        error: `"${name.slice(0, 40)}" is not a parameter of the ${kind} page (allowed: ${allowed.join(', ')})`,
      };
    }
    if (value.length > SAVED_VIEW_LIMITS.valueChars) {
      return { error: `the value of "${name}" is longer than ${SAVED_VIEW_LIMITS.valueChars} characters` };
    }
    if (++count > SAVED_VIEW_LIMITS.params) return { error: `more than ${SAVED_VIEW_LIMITS.params} parameters` };
  }
  if (kind === 'compare' && !COMPARE_SOURCES.some((s) => params.has(s))) {
    return { error: `a compare view names what it compares: ${COMPARE_SOURCES.join(', ')}` };
  }
  // percent-encoded, so every character is one byte
  const query = params.toString();
  if (query.length > SAVED_VIEW_LIMITS.queryBytes) return { error: tooLong() };
  return { query };
}

const tooLong = () => `longer than ${SAVED_VIEW_LIMITS.queryBytes} bytes once encoded`;

/** Where a view opens: its page with its query. */
export function savedViewPath(view: { kind: SavedViewKind; projectId: string; query: string }): string {
  const page = view.kind === 'runs' ? `/projects/${encodeURIComponent(view.projectId)}` : '/compare';
  return view.query ? `${page}?${view.query}` : page;
}

/** The input of `views.create`: the query is checked against the parameters of its kind's page, at `query`. */
export const savedViewCreateInput = z
  .object({
    projectId: pgText.min(1, 'must not be empty').max(64, 'must be at most 64 characters'),
    kind: z.enum(SAVED_VIEW_KINDS),
    name: savedViewName,
    query: pgText.max(SAVED_VIEW_LIMITS.queryBytes * 3, tooLong()),
  })
  .transform((v, ctx) => {
    const r = normalizeViewQuery(v.kind, v.query);
    if ('error' in r) {
      ctx.addIssue({ code: 'custom', path: ['query'], message: r.error });
      return z.NEVER;
    }
    return { ...v, query: r.query };
  });
