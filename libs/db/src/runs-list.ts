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
  sqlParams,
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
 * The index path's statement: the page's entries of the index after the cursor, then the page's runs; then, only
 * when those do not fill the page, runs of the project without the metric, by id. One statement, one snapshot.
 *
 * No part reads more than a page of index entries, however many runs share a value (an epoch, a 0/1 success): the
 * entries at the cursor's value after its id (`at`), the page's last value (`bound`, from the first entries past the
 * cursor's value in the index's own order), the entries strictly between the two (fewer than a page, as they come
 * before the bound) and those at the bound, by id (`page` joins the three). Runs are looked up for the page's entries
 * only.
 */
export function summaryIndexStatement(q: RunListQuery): {
  text: string;
  values: unknown[];
  cursorOf: (row: Record<string, unknown>) => unknown[];
} {
  const { values, p } = sqlParams();
  const desc = q.sortDir === 'desc';
  const [none, k, id] = q.cursor
    ? (decodeCursor(q.cursor, ['boolean', 'number', 'text']) as [boolean, number, string])
    : [false, null, null];
  const key = p(q.sortBy.slice('summary.'.length));
  const project = p(q.projectId);
  const team = teamRuns(p(q.teamId));
  const n = p(q.limit + 1);
  const entries = `run_summary_value s WHERE s.project_id = ${project} AND s.key = ${key}`;
  // the runs without the metric: a primary-key probe each (a subplan, never a join over every entry of the key), and
  // none at all when every run of the project has the metric (two index-only counts)
  const without = (afterId: string | null, count: string) => `
    SELECT ${RUN_LIST_COLUMNS}, 'Infinity'::float8 AS _k0 FROM run r
    WHERE r.project_id = ${project} AND ${team}
      AND (SELECT 1 FROM run_summary_value m WHERE m.run_id = r.id AND m.key = ${key}) IS NULL
      ${afterId === null ? '' : `AND r.id > ${p(afterId)}::text`}
      AND (SELECT count(*) FROM run c WHERE c.project_id = ${project}) > (SELECT count(*) FROM ${entries})
    ORDER BY r.id LIMIT ${count}`;
  if (none) return { text: without(id, n), values, cursorOf: summaryCursorOf };

  const [past, before, order, last] = desc ? ['<', '>', 'DESC', 'min'] : ['>', '<', 'ASC', 'max'];
  const v = k === null ? null : p(desc ? -k : k);
  const pastCursor = v === null ? '' : `AND s.value ${past} ${v}`;
  const at =
    v === null
      ? `SELECT NULL::text AS run_id, NULL::float8 AS value WHERE false`
      : `SELECT s.run_id, s.value FROM ${entries} AND s.value = ${v} AND s.run_id > ${p(id)} ORDER BY s.run_id LIMIT ${n}`;
  // `with_value` is read twice, so once (a CTE read twice is materialized). The runs without the metric are read
  // only when the page has room: under LIMIT 0 their scan never starts.
  const text = `
    WITH at AS (${at}),
    bound AS (
      SELECT ${last}(value) AS b FROM (
        SELECT value FROM (SELECT s.value FROM ${entries} ${pastCursor} ORDER BY s.value ${order} LIMIT ${n}) f
        ORDER BY value ${order} LIMIT greatest(${n} - (SELECT count(*) FROM at), 0)) g
    ),
    page AS (
      SELECT run_id, value FROM (
        SELECT * FROM at
        UNION ALL
        SELECT s.run_id, s.value FROM ${entries} ${pastCursor} AND s.value ${before} (SELECT b FROM bound)
        UNION ALL
        (SELECT s.run_id, s.value FROM ${entries} AND s.value = (SELECT b FROM bound) ORDER BY s.run_id LIMIT ${n})
      ) u
      ORDER BY value ${order}, run_id LIMIT ${n}
    ),
    with_value AS (
      SELECT ${RUN_LIST_COLUMNS}, ${desc ? '-s.value' : 's.value'} AS _k0
      FROM page s JOIN run r ON r.id = s.run_id WHERE r.project_id = ${project} AND ${team}
    ),
    room AS (SELECT ${n} - count(*) AS n FROM with_value)
    SELECT * FROM with_value
    UNION ALL
    SELECT * FROM (${without(null, '(SELECT n FROM room)')}) w
    ORDER BY _k0, id`;
  return { text, values, cursorOf: summaryCursorOf };
}
