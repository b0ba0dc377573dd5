/**
 * The runs list sorted by a summary metric: every run exactly once across pages, runs without the metric last in
 * both directions, ties by id, a cursor of the form it has always had still accepted, other teams' runs never in
 * it; within a project read from run_summary_value in index order (runs-list.ts), with the same order and cursors as
 * the statement over every run (runListStatement), which reads the first page of 100,000 runs with a bounded sort.
 * The trigger and the migration that keep run_summary_value are in runs-summary-index.int.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, seedRun, type TestDatabase } from '../src/testing';
import { listRuns, runListStatement, summaryIndexApplies, summaryIndexStatement, type RunListQuery } from '../src';

let t: TestDatabase;
let teamId = '';
let projectId = '';
let bigProjectId = '';
const N = 20_000;

/** The metric of run i: ties every 97 runs; none for every 11th run, a string for every 13th (not a number). */
const acc = (i: number): number | null => (i % 11 === 0 || i % 13 === 0 ? null : (i % 97) / 100);

beforeAll(async () => {
  t = await createTestDatabase();
  const a = await seedRun(t.db, { run: 'seeded-a' });
  const b = await seedRun(t.db, { run: 'seeded-b' });
  teamId = a.team.id;
  projectId = a.project.id;
  await t.db.pool.query(`DELETE FROM run`);
  await t.db.pool.query(
    `INSERT INTO run (id, project_id, name, summary)
     SELECT 'r' || i, $1, 'run-' || i,
            CASE WHEN i % 11 = 0 THEN '{}'::jsonb
                 WHEN i % 13 = 0 THEN jsonb_build_object('acc', 'NaN')
                 ELSE jsonb_build_object('acc', (i % 97) / 100.0, 'loss', 1) END
     FROM generate_series(1, $2) AS i`,
    [projectId, N],
  );
  // another team's runs, with the best values of all: never in this team's list
  await t.db.pool.query(
    `INSERT INTO run (id, project_id, name, summary)
     SELECT 'other' || i, $1, 'other-' || i, jsonb_build_object('acc', 5) FROM generate_series(1, 50) AS i`,
    [b.project.id],
  );
  // a large project of the same team, for the plan
  bigProjectId = (await t.db.prisma.project.create({ data: { teamId, name: 'big' } })).id;
  await t.db.pool.query(
    `INSERT INTO run (id, project_id, name, config, summary)
     SELECT 'big' || i, $1, 'big-' || i, jsonb_build_object('lr', 0.001, 'beta', 0.1),
            jsonb_build_object('acc', (i % 97) / 100.0, 'loss', (i % 13) / 10.0, 'ppl', 1.1)
     FROM generate_series(1, 100000) AS i`,
    [bigProjectId],
  );
  // statistics, as autovacuum keeps them: without, the planner may read a project's every entry to sort them
  await t.db.pool.query('ANALYZE run, run_summary_value');
});
afterAll(async () => {
  await t?.drop();
});

const base = (sortDir: 'asc' | 'desc'): RunListQuery => ({
  teamId,
  projectId,
  sortBy: 'summary.acc',
  sortDir,
  limit: 1000,
});

/** Every run's id in the order the list must give: by the metric, runs without it last, ties by id. */
function expectedOrder(dir: 'asc' | 'desc'): string[] {
  const sign = dir === 'desc' ? -1 : 1;
  return Array.from({ length: N }, (_, k) => k + 1)
    .sort((x, y) => {
      const [ax, ay] = [acc(x), acc(y)];
      if (ax === null || ay === null) {
        if (ax !== ay) return ax === null ? 1 : -1;
      } else if (ax !== ay) return sign * (ax - ay);
      const [ix, iy] = [`r${x}`, `r${y}`];
      return ix < iy ? -1 : ix > iy ? 1 : 0;
    })
    .map((i) => `r${i}`);
}

describe('listRuns sorted by a summary metric', () => {
  it.each(['asc', 'desc'] as const)('pages through every run once, %s, runs without the metric last', async (dir) => {
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await listRuns(t.db.pool, { ...base(dir), cursor });
      ids.push(...page.items.map((r) => r.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(ids).toEqual(expectedOrder(dir));
  });

  it('takes a cursor of the form it always gave: [no value, value, id]', async () => {
    const cursor = (v: unknown[]) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const next = (order: string[], id: string, n: number) =>
      order.slice(order.indexOf(id) + 1, order.indexOf(id) + 1 + n);
    // after r9 (0.09) ascending: the other runs at 0.09 with a greater id, then 0.10
    const a = await listRuns(t.db.pool, { ...base('asc'), cursor: cursor([false, 0.09, 'r9']), limit: 50 });
    expect(a.items.map((r) => r.id)).toEqual(next(expectedOrder('asc'), 'r9', 50));
    expect(a.items.map((r) => r.summary['acc'])).toContain(0.1);
    // among the runs without the metric, after r9988: the greater ids only, and no page after them
    const b = await listRuns(t.db.pool, { ...base('desc'), cursor: cursor([true, 0, 'r9988']), limit: 3 });
    expect(b.items.map((r) => r.id)).toEqual(['r9997', 'r9999']);
    expect(b.nextCursor).toBeNull();
  });

  it('never lists another team’s runs', async () => {
    const page = await listRuns(t.db.pool, { ...base('desc'), projectId: undefined, limit: 100 });
    expect(page.items.every((r) => [projectId, bigProjectId].includes(r.projectId))).toBe(true);
  });

  it('reads the first page of 100,000 runs with a bounded sort, not a sort of every run', async () => {
    const { text, values } = runListStatement({ ...base('desc'), projectId: bigProjectId, limit: 200 });
    const res = await t.db.pool.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values);
    const sorts: string[] = [];
    const walk = (node: Record<string, unknown>) => {
      if (node['Node Type'] === 'Sort') sorts.push(String(node['Sort Method']));
      for (const child of (node['Plans'] as Record<string, unknown>[] | undefined) ?? []) walk(child);
    };
    walk((res.rows[0]!['QUERY PLAN'] as { Plan: Record<string, unknown> }[])[0]!.Plan);
    expect(sorts.length).toBeGreaterThan(0);
    expect(sorts.every((m) => m === 'top-N heapsort')).toBe(true);
  });

  it.each(['asc', 'desc'] as const)(
    'reads the same order from the index as the statement over every run, %s, and their cursors read on each other',
    async (dir) => {
      const q: RunListQuery = { ...base(dir), limit: 97 };
      expect(summaryIndexApplies(q)).toBe(true);
      const ids: string[] = [];
      const cursors: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await listRuns(t.db.pool, { ...q, cursor });
        ids.push(...page.items.map((r) => r.id));
        cursor = page.nextCursor ?? undefined;
        if (cursor) cursors.push(cursor);
      } while (cursor);
      const all = runListStatement({ ...q, limit: N });
      const statement = (await t.db.pool.query<{ id: string }>(all.text, all.values)).rows.map((r) => r.id);
      expect(ids).toEqual(statement);
      // each path's cursors continue the same on the other, also where the runs without the metric begin
      const onStatement = async (c: string) => {
        const st = runListStatement({ ...q, cursor: c });
        return (await t.db.pool.query<{ id: string }>(st.text, st.values)).rows.map((r) => r.id).slice(0, 97);
      };
      const firstWithout = ids.findIndex((id) => acc(Number(id.slice(1))) === null);
      for (const c of [cursors[0]!, cursors[Math.floor(firstWithout / 97) - 1]!, cursors[cursors.length - 1]!]) {
        expect((await listRuns(t.db.pool, { ...q, cursor: c })).items.map((r) => r.id)).toEqual(await onStatement(c));
      }
      const st = await listRuns(t.db.pool, { ...q, search: 'run-' }); // a filter: the statement, and its cursor
      expect(summaryIndexApplies({ ...q, search: 'run-' })).toBe(false);
      const idx = summaryIndexStatement({ ...q, cursor: st.nextCursor! });
      expect((await t.db.pool.query<{ id: string }>(idx.text, idx.values)).rows.map((r) => r.id)).toEqual(
        ids.slice(97, 97 * 2 + 1),
      );
    },
  );

  /** The rows each scan of `table` read, those its filter removed included, for one page of the index path. */
  async function reads(q: RunListQuery) {
    const st = summaryIndexStatement(q);
    const res = await t.db.pool.query<{ 'QUERY PLAN': unknown }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) ${st.text}`,
      st.values,
    );
    const nodes: Record<string, unknown>[] = [];
    const walk = (node: Record<string, unknown>) => {
      nodes.push(node);
      for (const child of (node['Plans'] as Record<string, unknown>[] | undefined) ?? []) walk(child);
    };
    walk((res.rows[0]!['QUERY PLAN'] as { Plan: Record<string, unknown> }[])[0]!.Plan);
    return (table: string, filter = /./) =>
      nodes
        .filter((n) => n['Relation Name'] === table && filter.test(String(n['Filter'] ?? '')))
        .map((n) => (Number(n['Actual Rows']) + Number(n['Rows Removed by Filter'] ?? 0)) * Number(n['Actual Loops']));
  }
  const cursor = (v: unknown[]) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const big = (sortBy: string, c?: unknown[]): RunListQuery => ({
    ...base('desc'),
    projectId: bigProjectId,
    sortBy,
    limit: 200,
    cursor: c && cursor(c),
  });
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

  it('reads a page of 100,000 runs from the index: a page of entries and of runs, however many share a value', async () => {
    // the first page: its last value is shared by 1,031 runs (ties every 97); the page reads 200 of them
    let read = await reads(big('summary.acc'));
    expect(read('run_summary_value').length).toBeGreaterThan(0);
    expect(sum(read('run_summary_value'))).toBeLessThan(1000);
    // the runs: one lookup per entry of the page, and the runs without the metric never scanned (the page is full)
    expect(sum(read('run'))).toBeLessThan(300);
    // every run has ppl 1.1: a page in the middle of that tie reads a page too
    read = await reads(big('summary.ppl', [false, -1.1, 'big5000']));
    expect(sum(read('run_summary_value'))).toBeLessThan(1000);
    expect(sum(read('run'))).toBeLessThan(300);
  });

  it('reaches the end of a metric every run has without walking the runs', async () => {
    // the last runs with the value, then none without it: two counts tell (the project's runs, the metric's
    // entries), and no run is tested for the metric (the probe of each run's entry, a subplan in the filter)
    const read = await reads(big('summary.ppl', [false, -1.1, 'big99990']));
    expect(sum(read('run', /SubPlan/))).toBe(0);
    // where runs lack it, they are found by that probe
    const lacking = await reads({ ...base('desc'), cursor: cursor([false, -0.01, 'r9999']), limit: 200 });
    expect(sum(read('run', /SubPlan/)) + sum(lacking('run', /SubPlan/))).toBeGreaterThan(0);
  });
});
