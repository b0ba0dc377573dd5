/**
 * The runs list (filtered, sorted, paged by keyset: stable under inserts; the filters and sorts are described in
 * runs-query.ts). A project's list sorted by a summary metric, with no other filter, reads `run_summary_value` in
 * index order and stops at the page (docs/architecture.md, "The runs list"); every other list is one statement over
 * the runs (runListStatement), which computes the sort key of every run that passes the filters.
 *
 * The summary order, the same on both paths (a cursor of either reads on the other): runs with the metric by value
 * (descending: largest first), ties by id, then runs without it (no value, not a number) by id.
 */
import type { Pool } from 'pg';
import {
  decodeCursor,
  encodeCursor,
  RUN_LIST_COLUMNS,
  runListStatement,
  summaryCursorOf,
  teamRuns,
  type RunListQuery,
  type RunListRow,
} from './runs-query';

/** A page of the runs list and the cursor of the next one. */
export async function listRuns(
  pool: Pool,
  q: RunListQuery,
): Promise<{ items: RunListRow[]; nextCursor: string | null }> {
  const { text, values, cursorOf } = summaryIndexApplies(q) ? summaryIndexStatement(q) : runListStatement(q);
  const rows = (await pool.query<RunListRow & Record<string, unknown>>(text, values)).rows;
  const more = rows.length > q.limit;
  if (more) rows.pop();
  const last = rows[rows.length - 1];
  const items = rows.map((row) => {
    const out = { ...row };
    for (const k of Object.keys(out)) if (k.startsWith('_k')) delete out[k];
    return out as RunListRow;
  });
  return { items, nextCursor: more && last ? encodeCursor(cursorOf(last)) : null };
}

/**
 * Whether the index serves this list: a summary sort within one project and no other filter. A filter would be
 * checked on each index entry's run, one lookup each, until a page passed it: slower than the statement's scan when
 * the filter is selective.
 */
export function summaryIndexApplies(q: RunListQuery): boolean {
  return (
    q.sortBy.startsWith('summary.') &&
    !!q.projectId &&
    !q.sweepId &&
    !q.status?.length &&
    !q.method?.length &&
    !q.constraint?.length &&
    !q.tags?.length &&
    !q.search &&
    !q.config?.length &&
    !q.summary?.length
  );
}

/**
 * The index path's statement: up to limit + 1 runs with the metric after the cursor, from the index; then, only when
 * those do not fill the page, runs of the project without it, by id (the `(project_id, id)` index, stopped at the
 * page; `summary_number` is the trigger's own test of a value, in the migration). One statement, one snapshot.
 */
export function summaryIndexStatement(q: RunListQuery): {
  text: string;
  values: unknown[];
  cursorOf: (row: Record<string, unknown>) => unknown[];
} {
  const values: unknown[] = [];
  const p = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  const desc = q.sortDir === 'desc';
  const [none, k, id] = q.cursor
    ? (decodeCursor(q.cursor, ['boolean', 'number', 'text']) as [boolean, number, string])
    : [false, null, null];
  const key = p(q.sortBy.slice('summary.'.length));
  const project = p(q.projectId);
  const team = teamRuns(p(q.teamId));
  const n = p(q.limit + 1);
  const without = (afterId: string | null, count: string) => `
    SELECT ${RUN_LIST_COLUMNS}, 'Infinity'::float8 AS _k0 FROM run r
    WHERE r.project_id = ${project} AND ${team} AND summary_number(r.summary -> ${key}) IS NULL
      ${afterId === null ? '' : `AND r.id > ${p(afterId)}::text`}
    ORDER BY r.id LIMIT ${count}`;
  let text: string;
  if (none) {
    text = without(id, n);
  } else {
    const where = [`s.project_id = ${project}`, `s.key = ${key}`];
    if (k !== null) {
      // after (k, id) in (sort key, id) order, written on s.value so that the index finds the place
      const v = p(desc ? -k : k);
      where.push(
        desc ? `s.value <= ${v}` : `s.value >= ${v}`,
        `(s.value ${desc ? '<' : '>'} ${v} OR s.run_id > ${p(id)})`,
      );
    }
    const order = `s.value ${desc ? 'DESC' : 'ASC'}`;
    // `bound`: the page's last value, from the first limit + 1 entries in the index's own order (no sort, whatever
    // the planner believes of the table). The page is then the entries up to it, ties included, in (value, id)
    // order: a range of the index, sorted. `with_value` is read twice, so once (a CTE read twice is materialized).
    // The runs without the metric are read only when the page has room: under LIMIT 0 their scan never starts.
    text = `
      WITH bound AS (
        SELECT ${desc ? 'min' : 'max'}(value) AS b
        FROM (SELECT s.value FROM run_summary_value s WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ${n}) f
      ), with_value AS (
        SELECT ${RUN_LIST_COLUMNS}, ${desc ? '-s.value' : 's.value'} AS _k0
        FROM run_summary_value s JOIN run r ON r.id = s.run_id
        WHERE ${where.join(' AND ')} AND s.value ${desc ? '>=' : '<='} (SELECT b FROM bound) AND ${team}
        ORDER BY ${order}, s.run_id ASC
        LIMIT ${n}
      ), room AS (SELECT ${n} - count(*) AS n FROM with_value)
      SELECT * FROM with_value
      UNION ALL
      SELECT * FROM (${without(null, '(SELECT n FROM room)')}) w
      ORDER BY _k0, id`;
  }
  return { text, values, cursorOf: summaryCursorOf };
}
