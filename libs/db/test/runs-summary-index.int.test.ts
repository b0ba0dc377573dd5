/**
 * run_summary_value, the index the runs list reads when sorted by a summary metric (runs-list.ts): the trigger keeps
 * it in step with every change of a run's summary or project, values out of double's range never fail a write, and
 * the migration that made it runs again as `prisma migrate deploy` runs it (split at every semicolon) and fills it
 * without a stale value when summaries change meanwhile.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase, seedRun, type TestDatabase } from '../src/testing';
import { listRuns, mergeRunSummary, runListStatement, type RunListQuery } from '../src';

const MIGRATION = readFileSync(
  join(__dirname, '../../../prisma/migrations/20261202090000_run_summary_values/migration.sql'),
  'utf8',
);
/** The migration's statements as prisma migrate deploy sends them: the file split at every semicolon. */
const STATEMENTS = MIGRATION.split(';').filter((s) => s.replace(/--[^\n]*/g, '').trim() !== '');

let t: TestDatabase;
let teamId = '';
let project = '';
let other = '';

beforeAll(async () => {
  t = await createTestDatabase();
  teamId = (await seedRun(t.db)).team.id;
  project = (await t.db.prisma.project.create({ data: { teamId, name: 'listed' } })).id;
  other = (await t.db.prisma.project.create({ data: { teamId, name: 'other' } })).id;
});
afterAll(async () => {
  await t?.drop();
});

const rows = async (ids: string[]) =>
  (
    await t.db.pool.query<{ run_id: string; project_id: string; key: string; value: number }>(
      `SELECT run_id, project_id, key, value FROM run_summary_value WHERE run_id = ANY($1) ORDER BY run_id, key`,
      [ids],
    )
  ).rows;

describe('run_summary_value', () => {
  it('follows every change of a summary: set, changed, removed, not a number, deleted, moved', async () => {
    await t.db.pool.query(
      `INSERT INTO run (id, project_id, name, summary) VALUES
         ('k1', $1, 'k1', '{"m": 3}'), ('k2', $1, 'k2', '{"m": 1}'), ('k3', $1, 'k3', '{}'), ('k4', $1, 'k4', '{"m": 2}')`,
      [project],
    );
    const q = (projectId: string): RunListQuery => ({
      teamId,
      projectId,
      sortBy: 'summary.m',
      sortDir: 'desc',
      limit: 10,
    });
    const order = async (projectId: string) => (await listRuns(t.db.pool, q(projectId))).items.map((r) => r.id);
    expect(await order(project)).toEqual(['k1', 'k4', 'k2', 'k3']);
    await mergeRunSummary(t.db.pool, 'k3', teamId, { m: 5 }); // set
    await mergeRunSummary(t.db.pool, 'k2', teamId, { m: 4 }); // changed
    await mergeRunSummary(t.db.pool, 'k1', teamId, { m: null }); // removed
    await mergeRunSummary(t.db.pool, 'k4', teamId, { m: 'NaN', other: 1 }); // not a number
    expect(await order(project)).toEqual(['k3', 'k2', 'k1', 'k4']);
    await t.db.pool.query(`DELETE FROM run WHERE id = 'k2'`);
    await t.db.pool.query(`UPDATE run SET project_id = $1 WHERE id = 'k3'`, [other]);
    expect(await order(project)).toEqual(['k1', 'k4']);
    expect(await order(other)).toEqual(['k3']);
    expect(await rows(['k1', 'k2', 'k3', 'k4'])).toEqual([
      { run_id: 'k3', project_id: other, key: 'm', value: 5 },
      { run_id: 'k4', project_id: project, key: 'other', value: 1 },
    ]);
    // the statement over every run gives the same
    const st = runListStatement(q(project));
    expect((await t.db.pool.query<{ id: string }>(st.text, st.values)).rows.map((r) => r.id)).toEqual(['k1', 'k4']);
  });

  it('leaves out what double precision cannot hold, and never fails the write', async () => {
    await t.db.pool.query(`INSERT INTO run (id, project_id, name, summary) VALUES ('f1', $1, 'f1', '{"m": 1}')`, [
      project,
    ]);
    for (const summary of ['{"m": 1e400}', '{"m": -1e400, "n": 1e-400}', '{"m": {"p": 1}}', '[1, 2]', '"text"']) {
      await t.db.pool.query(`UPDATE run SET summary = $1::jsonb WHERE id = 'f1'`, [summary]);
      expect(await rows(['f1'])).toEqual([]);
    }
    // at the edges of double precision, a value exactly when the list statement's cast reads one (rounding included)
    for (const x of [
      '1.7976931348623157e308',
      '1.7976931348623158e308',
      '1.797693134862315807937289714053e308',
      '1.7976931348623159e308',
      '5e-324',
      '3e-324',
      '2.4703282292062328e-324',
      '2.4703282292062327e-324',
      '1e-400',
      '-1e-400',
      '0',
      '-0',
      '1e400',
    ]) {
      const cast = await t.db.pool.query<{ v: number }>(`SELECT ($1::jsonb #>> '{}')::float8 AS v`, [x]).then(
        (r) => r.rows[0]!.v,
        () => null,
      );
      const ours = (await t.db.pool.query<{ v: number | null }>(`SELECT summary_number($1::jsonb) AS v`, [x])).rows[0]!
        .v;
      expect([x, ours]).toEqual([x, cast]);
    }
    // the smallest and largest doubles JavaScript writes are values
    await t.db.pool.query(`UPDATE run SET summary = $1::jsonb WHERE id = 'f1'`, [
      JSON.stringify({ m: Number.MIN_VALUE, n: -Number.MAX_VALUE, z: -0 }),
    ]);
    expect((await rows(['f1'])).map((r) => [r.key, r.value])).toEqual([
      ['m', Number.MIN_VALUE],
      ['n', -Number.MAX_VALUE],
      ['z', 0],
    ]);
  });

  it('runs again as prisma migrate deploy runs it, split at every semicolon, and keeps what it holds', async () => {
    await t.db.pool.query(
      `INSERT INTO run (id, project_id, name, summary) VALUES ('m1', $1, 'm1', '{"a": 1, "b": 2.5, "c": "x"}')`,
      [project],
    );
    const before = await rows(['m1']);
    expect(before.map((r) => [r.key, r.value])).toEqual([
      ['a', 1],
      ['b', 2.5],
    ]);
    for (const s of STATEMENTS) await t.db.pool.query(s);
    expect(await rows(['m1'])).toEqual(before);
    // a run written before the trigger existed is filled by the backfill, and a row its summary no longer has (a
    // deploy stopped between the two triggers) or in the wrong project is gone
    await t.db.pool.query(`DELETE FROM run_summary_value WHERE run_id = 'm1'`);
    await t.db.pool.query(
      `INSERT INTO run_summary_value (run_id, project_id, key, value) VALUES ('m1', $1, 'gone', 1), ('m1', $2, 'a', 1)`,
      [project, other],
    );
    await t.db.pool.query(STATEMENTS.find((s) => s.includes('LOCK TABLE'))!);
    expect(await rows(['m1'])).toEqual(before);
  });

  it('fills the index while summaries change, without a stale value', async () => {
    await t.db.pool.query(
      `INSERT INTO run (id, project_id, name, summary) VALUES ('c1', $1, 'c1', '{"m": 1}'), ('c2', $1, 'c2', '{"m": 1}')`,
      [project],
    );
    // as before the migration's last statement: the trigger in place, these runs not yet filled in
    await t.db.pool.query(`DELETE FROM run_summary_value WHERE run_id IN ('c1', 'c2')`);
    const writer = new pg.Client({ connectionString: t.url });
    const filler = new pg.Client({ connectionString: t.url });
    await writer.connect();
    await filler.connect();
    try {
      await writer.query('BEGIN');
      await writer.query(`UPDATE run SET summary = '{"m": 2}' WHERE id = 'c1'`); // changed
      await writer.query(`UPDATE run SET summary = '{}' WHERE id = 'c2'`); // removed
      const pid = (await filler.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const fill = filler.query(STATEMENTS.find((s) => s.includes('LOCK TABLE'))!);
      // the backfill waits for the writer (its table lock), which then commits
      for (let i = 0; i < 100; i++) {
        const w = await t.db.pool.query(`SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1`, [pid]);
        if (w.rows[0]?.wait_event_type === 'Lock') break;
        await new Promise((r) => setTimeout(r, 20));
      }
      await writer.query('COMMIT');
      await fill;
    } finally {
      await writer.end();
      await filler.end();
    }
    expect(await rows(['c1', 'c2'])).toEqual([{ run_id: 'c1', project_id: project, key: 'm', value: 2 }]);
  });

  it('keeps no plan that reads the whole table: a session that saw it small still writes by its keys', async () => {
    const c = new pg.Client({ connectionString: t.url });
    await c.connect();
    try {
      await c.query('BEGIN');
      // the trigger's statements run (and their plans are kept) while the table holds a few rows
      for (let i = 0; i < 10; i++) {
        await c.query(`INSERT INTO run (id, project_id, name, summary) VALUES ($1, $2, $1, '{"a": 1, "b": 2}')`, [
          `p${i}`,
          project,
        ]);
        await c.query(`UPDATE run SET summary = '{"a": 2}' WHERE id = $1`, [`p${i}`]);
      }
      await c.query(
        `INSERT INTO run (id, project_id, name, summary)
         SELECT 'q' || i, $1, 'q', jsonb_build_object('a', i, 'b', i) FROM generate_series(1, 3000) i`,
        [project],
      );
      const seqScans = async () =>
        Number(
          (
            await c.query<{ n: string }>(
              `SELECT seq_scan::text AS n FROM pg_stat_xact_user_tables WHERE relname = 'run_summary_value'`,
            )
          ).rows[0]!.n,
        );
      const before = await seqScans();
      for (let i = 1; i <= 20; i++) await c.query(`UPDATE run SET summary = '{"a": 0}' WHERE id = $1`, [`q${i}`]);
      expect(await seqScans()).toBe(before);
      expect(
        (await c.query(`SELECT 1 FROM run_summary_value WHERE run_id = ANY($1)`, [['q1', 'q2', 'q3']])).rowCount,
      ).toBe(3);
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
  });
});
