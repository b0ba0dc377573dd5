/**
 * How the run page groups its charts: one section per key prefix, as W&B groups panels. The sections a person
 * opens the page for come first (train, val, test), then the method's own diagnostics (boundary, dist), then the
 * machine (sys); any other prefix gets its own section after those, and keys without a prefix end in "other".
 * Pure, so the order is tested without a browser.
 */
import { PROGRESS_PREFIX } from '@aft/contracts';

/** Known prefixes, top to bottom. */
export const SECTION_ORDER = ['train', 'val', 'test', 'boundary', 'dist', 'sys'] as const;
/** Sections that start collapsed: ten quantile charts and machine stats are looked at when something is off. */
export const DEFAULT_COLLAPSED: readonly string[] = ['dist', 'sys'];
/** Where keys without a prefix go. */
export const OTHER = 'other';
/** The longest filter taken from the URL or the box; a key is at most a few dozen characters. */
export const MAX_FILTER = 100;

/**
 * Leaf names (the key after its prefix) a person reads first, in that order; the rest follow alphabetically.
 * A leaf `loss/nll` ranks with `loss`, right after it.
 */
const IMPORTANT = [
  'loss',
  'task_accuracy',
  'assessment_accuracy',
  'ref_perplexity',
  'score_gap',
  'rerank_accuracy',
  'majority_accuracy',
  'positive_p50',
  'negative_p50',
  'boundary',
  'belowFraction',
];

export interface MetricSection<T> {
  /** The prefix (`train`, `custom`, …) or `other`. */
  id: string;
  items: T[];
}

/** The section a key belongs to: its first path segment, or `other` when it has none. */
export function sectionOf(key: string): string {
  const i = key.indexOf('/');
  return i > 0 ? key.slice(0, i) : OTHER;
}

const collator = new Intl.Collator('en', { numeric: true });

function rank(key: string, section: string): number {
  const leaf = section === OTHER && !key.startsWith(`${OTHER}/`) ? key : key.slice(section.length + 1);
  const i = IMPORTANT.findIndex((name) => leaf === name || leaf.startsWith(`${name}/`));
  return i < 0 ? IMPORTANT.length : i;
}

function sectionRank(id: string): number {
  const i = (SECTION_ORDER as readonly string[]).indexOf(id);
  if (i >= 0) return i;
  return id === OTHER ? SECTION_ORDER.length + 2 : SECTION_ORDER.length + 1;
}

/**
 * Groups items by their key's prefix, sections and items in reading order. Progress keys (the run's progress
 * bar, not charts) are left out; `filter` keeps only the keys it matches, and drops sections left empty.
 */
export function metricSections<T>(items: readonly T[], keyOf: (item: T) => string, filter = ''): MetricSection<T>[] {
  const match = keyMatcher(filter);
  const byId = new Map<string, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    if (key.startsWith(PROGRESS_PREFIX) || !match(key)) continue;
    const id = sectionOf(key);
    const list = byId.get(id);
    if (list) list.push(item);
    else byId.set(id, [item]);
  }
  return [...byId.entries()]
    .sort(([a], [b]) => sectionRank(a) - sectionRank(b) || collator.compare(a, b))
    .map(([id, list]) => ({
      id,
      items: list
        .map((item) => ({ item, key: keyOf(item) }))
        .sort((a, b) => rank(a.key, id) - rank(b.key, id) || collator.compare(a.key, b.key))
        .map((x) => x.item),
    }));
}

/**
 * A case-insensitive match of the key against the filter: a substring, or — with `*` — the parts in order with
 * anything between (`val*acc` finds `val/task_accuracy`). Plain `indexOf` in sequence, never a RegExp built from
 * user text: linear in the key, no backtracking. The empty filter matches everything.
 */
export function keyMatcher(filter: string): (key: string) => boolean {
  const parts = filter.slice(0, MAX_FILTER).trim().toLowerCase().split('*').filter(Boolean);
  if (!parts.length) return () => true;
  return (key) => {
    const k = key.toLowerCase();
    let at = 0;
    for (const p of parts) {
      const i = k.indexOf(p, at);
      if (i < 0) return false;
      at = i + p.length;
    }
    return true;
  };
}

/**
 * The collapsed sections from the URL's `collapsed` parameter: absent means the defaults; present, the comma-
 * separated ids it lists (empty: every section open).
 */
export function parseCollapsed(param: string | null): Set<string> {
  if (param === null) return new Set(DEFAULT_COLLAPSED);
  return new Set(
    param
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .slice(0, 50),
  );
}

/** The `collapsed` parameter after toggling a section: null when that leaves the defaults (a clean URL). */
export function toggleCollapsed(param: string | null, id: string): string | null {
  const next = parseCollapsed(param);
  if (next.has(id)) next.delete(id);
  else next.add(id);
  const isDefault = next.size === DEFAULT_COLLAPSED.length && DEFAULT_COLLAPSED.every((d) => next.has(d));
  return isDefault ? null : [...next].sort().join(',');
}
