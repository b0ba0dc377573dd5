/**
 * The runs list (filtered, sorted, paged by keyset: stable under inserts). Sorted by a summary metric within a
 * project it reads `run_summary_value` (a trigger on run keeps each run's numeric top-level summary values there) in
 * index order and stops at the page: about 1 ms at 100,000 runs, where computing the value of every run and sorting
 * them took 130 ms on the 2-core machine. Every other list is one statement (runs-query.ts, runListStatement).
 *
 * Order, the same on both paths (a cursor of either reads on the other): runs with the metric by value (descending:
 * largest first), ties by id, then runs without it (no value, or not a number) by id. The cursor is
 * [without metric, sort key, id], the sort key being the value, negated when descending.
 */
import type { Pool } from 'pg';
import {
  decodeCursor,
  encodeCursor,
  RUN_LIST_COLUMNS,
  runFilters,
  runListStatement,
  type RunListQuery,
  type RunListRow,
} from './runs-query';

type Row = RunListRow & Record<string, unknown>;

/** A page of the runs list (runs-query.ts describes the filters and sorts) and the cursor of the next one. */
export async function listRuns(
  pool: Pool,
  q: RunListQuery,
): Promise<{ items: RunListRow[]; nextCursor: string | null }> {
  let rows: Row[];
  let cursorOf: (row: Record<string, unknown>) => unknown[];
  if (q.sortBy.startsWith('summary.') && q.projectId) {
    rows = await bySummaryValue(pool, q);
    cursorOf = summaryCursor;
  } else {
    const st = runListStatement(q);
    rows = (await pool.query<Row>(st.text, st.values)).rows;
    cursorOf = st.cursorOf;
  }
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

const summaryCursor = (row: Record<string, unknown>) =>
  row['_k0'] === Infinity ? [true, 0, row['id']] : [false, row['_k0'], row['id']];

/**
 * Up to limit + 1 runs of the project in the summary order: first those with the metric, from the index (the
 * cursor's place found by the index too), then, if the page is not full, those without it. Runs without the metric
 * take a scan of the project's runs, as every page did before, but only on the pages that reach them.
 */
async function bySummaryValue(pool: Pool, q: RunListQuery): Promise<Row[]> {
  const st = summaryStatements(q);
  const out = st.withValue ? (await pool.query<Row>(st.withValue.text, st.withValue.values)).rows : [];
  if (out.length > q.limit) return out;
  const rest = st.without(q.limit + 1 - out.length);
  return [...out, ...(await pool.query<Row>(rest.text, rest.values)).rows];
}

interface Statement {
  text: string;
  values: unknown[];
}

/**
 * bySummaryValue's statements: the runs with the metric after the cursor (none when the cursor is past them), and
 * the first `n` runs without it after the cursor.
 */
export function summaryStatements(q: RunListQuery): {
  withValue: Statement | null;
  without: (n: number) => Statement;
} {
  const key = q.sortBy.slice('summary.'.length);
  const desc = q.sortDir === 'desc';
  const [none, k, id] = q.cursor
    ? (decodeCursor(q.cursor, ['boolean', 'number', 'text']) as [boolean, number, string])
    : [false, null, null];
  const statement = (build: (p: (v: unknown) => string, where: string[]) => string): Statement => {
    const values: unknown[] = [];
    const p = (v: unknown) => {
      values.push(v);
      return `$${values.length}`;
    };
    return { text: build(p, runFilters(q, p)), values };
  };
  const withValue = none
    ? null
    : statement((p, where) => {
        where.push(`s.project_id = ${p(q.projectId)}`, `s.key = ${p(key)}`);
        if (k !== null) {
          // after (k, id) in (sort key, id) order, written on s.value so the index finds the place
          const v = p(desc ? -k : k);
          where.push(desc ? `s.value <= ${v}` : `s.value >= ${v}`);
          where.push(`(s.value ${desc ? '<' : '>'} ${v} OR r.id > ${p(id)})`);
        }
        return `SELECT ${RUN_LIST_COLUMNS}, ${desc ? '-s.value' : 's.value'} AS _k0
                FROM run_summary_value s JOIN run r ON r.id = s.run_id
                WHERE ${where.join(' AND ')}
                ORDER BY s.value ${desc ? 'DESC' : 'ASC'}, r.id ASC
                LIMIT ${p(q.limit + 1)}`;
      });
  const without = (n: number) =>
    statement((p, where) => {
      where.push(`NOT EXISTS (SELECT 1 FROM run_summary_value s WHERE s.run_id = r.id AND s.key = ${p(key)})`);
      if (none) where.push(`r.id > ${p(id)}`);
      return `SELECT ${RUN_LIST_COLUMNS}, 'Infinity'::float8 AS _k0 FROM run r
              WHERE ${where.join(' AND ')}
              ORDER BY r.id ASC
              LIMIT ${p(n)}`;
    });
  return { withValue, without };
}
