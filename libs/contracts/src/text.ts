import { z } from 'zod';

/**
 * Text Postgres cannot store. `text` refuses U+0000 outright; `jsonb` refuses the escape `\u0000` in strings and
 * keys; a lone UTF-16 surrogate is escaped by JSON.stringify as `\udXXX`, which jsonb refuses, and is silently
 * turned into U+FFFD in `text`. Each is a 500 from the database unless refused here, at the input.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why Postgres cannot store `s`, or null when it can. */
export function unstorableReason(s: string): string | null {
  if (s.includes('\u0000')) return 'must not contain a NUL character (\\u0000)';
  if (LONE_SURROGATE.test(s)) return 'must not contain a lone UTF-16 surrogate (malformed Unicode)';
  return null;
}

/** A string Postgres can store: every tRPC input string that reaches the database is built from this. */
export const pgText = z.string().superRefine((s, ctx) => {
  const reason = unstorableReason(s);
  if (reason) ctx.addIssue({ code: 'custom', message: reason });
});

/** JSON nested deeper than this is refused: the walks over it (ours, JSON.stringify, Postgres') recurse. */
export const MAX_JSON_DEPTH = 64;

export interface JsonProblem {
  path: (string | number)[];
  message: string;
}

/**
 * The first place in a JSON value (keys and strings, at any depth) that Postgres cannot store, or that nests deeper
 * than `maxDepth`; null when there is none. The path is only built on the way out, so a clean walk allocates nothing.
 */
export function findUnstorable(value: unknown, maxDepth: number = MAX_JSON_DEPTH): JsonProblem | null {
  const p = walk(value, maxDepth, maxDepth);
  if (p) p.path.reverse();
  return p;
}

function walk(value: unknown, depthLeft: number, maxDepth: number): JsonProblem | null {
  if (typeof value === 'string') {
    const reason = unstorableReason(value);
    return reason ? { path: [], message: reason } : null;
  }
  if (!value || typeof value !== 'object') return null;
  if (depthLeft <= 0) return { path: [], message: `must not nest deeper than ${maxDepth} levels` };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = walk(value[i], depthLeft - 1, maxDepth);
      if (p) {
        p.path.push(i);
        return p;
      }
    }
    return null;
  }
  for (const k in value) {
    if (!Object.hasOwn(value, k)) continue;
    const reason = unstorableReason(k);
    if (reason) return { path: [k], message: `a key ${reason}` };
    const p = walk((value as Record<string, unknown>)[k], depthLeft - 1, maxDepth);
    if (p) {
      p.path.push(k);
      return p;
    }
  }
  return null;
}

/** Adds an issue at the unstorable spot of a free-form JSON input (event details, summaries, configs, metadata). */
export function checkStorableJson<T>(value: T, ctx: z.RefinementCtx<T>): boolean {
  const p = findUnstorable(value);
  if (p) ctx.addIssue({ code: 'custom', message: p.message, path: p.path });
  return !p;
}
