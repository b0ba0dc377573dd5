/**
 * Test fixtures: a fresh database per test file, cloned from a template that holds the migrations.
 * Entered as `@aft/db/testing`, never from the main entry.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { createDb, type Db } from './client';
import { countStoredPoints, readPoints, STEP_MAX, STEP_MIN } from './metric-chunks';

const MIGRATIONS = resolve(import.meta.dirname, '../../../prisma/migrations');

/** The server the tests use; CI and the dev machines have Postgres on 127.0.0.1 with trust auth. */
export const TEST_PG_URL = process.env['AFT_TEST_PG_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export function dbUrl(name: string): string {
  const u = new URL(TEST_PG_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

function migrationFiles(): string[] {
  return readdirSync(MIGRATIONS, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => join(MIGRATIONS, d.name, 'migration.sql'))
    .sort();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: TEST_PG_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Creates (once, under an advisory lock) a template database holding the current migrations. */
export async function ensureTemplate(): Promise<string> {
  const sql = migrationFiles().map((f) => readFileSync(f, 'utf8'));
  const name = `aft_tpl_${createHash('sha256').update(sql.join('\n')).digest('hex').slice(0, 12)}`;
  await admin(async (c) => {
    await c.query('SELECT pg_advisory_lock(727274)');
    try {
      const exists = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (exists.rowCount) return;
      await c.query(`CREATE DATABASE ${name}`);
      const t = new pg.Client({ connectionString: dbUrl(name) });
      await t.connect();
      try {
        for (const s of sql) await t.query(s);
      } catch (e) {
        await t.end();
        await c.query(`DROP DATABASE ${name}`);
        throw e;
      }
      await t.end();
    } finally {
      await c.query('SELECT pg_advisory_unlock(727274)');
    }
  });
  return name;
}

export interface TestDatabase {
  name: string;
  url: string;
  db: Db;
  drop(): Promise<void>;
}

/** A new, migrated, empty database for one test file. Call `drop()` in afterAll. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const template = await ensureTemplate();
  const name = `aft_t_${randomBytes(6).toString('hex')}`;
  await admin(async (c) => {
    // CREATE DATABASE … TEMPLATE fails while another session is copying the same template: retry briefly.
    for (let i = 0; ; i++) {
      try {
        await c.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
        return;
      } catch (e) {
        if (i >= 20) throw e;
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
      }
    }
  });
  const url = dbUrl(name);
  const db = createDb({ connectionString: url, max: 6 });
  return {
    name,
    url,
    db,
    async drop() {
      await db.close();
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/** A team, a project and a run to hang test data on. */
export async function seedRun(db: Db, opts: { team?: string; project?: string; run?: string } = {}) {
  const team = await db.prisma.team.create({
    data: { slug: opts.team ?? `team-${randomBytes(4).toString('hex')}`, name: 'Test team' },
  });
  const project = await db.prisma.project.create({ data: { teamId: team.id, name: opts.project ?? 'test' } });
  const run = await db.prisma.run.create({ data: { projectId: project.id, name: opts.run ?? 'run-1' } });
  return { team, project, run };
}

/** How many metric points a run has stored, and how many distinct (key, step) pairs among them. */
export async function countPoints(db: Db, runId: string): Promise<{ n: number; distinct: number }> {
  const r = await db.pool.query<{ num: string }>('SELECT num::text AS num FROM run WHERE id = $1', [runId]);
  // chunks and tail: a point folded since it was written still counts, once
  return r.rows[0] ? countStoredPoints(db.pool, r.rows[0].num) : { n: 0, distinct: 0 };
}

/** A stored metric point, wherever it lives (chunk or tail); `time` in ms since the epoch. */
export interface StoredPoint {
  run: string;
  key: string;
  step: number;
  value: number;
  time: number;
}

/**
 * Every metric point of the runs matching `where` (a run id, or every run of a project), in chunks and tail, sorted
 * by run name, key and step: what tests compare instead of reading the tail table, which a fold empties.
 */
export async function storedPoints(db: Db, where: { runId?: string; projectId?: string }): Promise<StoredPoint[]> {
  const runs = await db.pool.query<{ num: string; name: string }>(
    'SELECT num::text AS num, name FROM run WHERE ($1::text IS NULL OR id = $1) AND ($2::text IS NULL OR project_id = $2)',
    [where.runId ?? null, where.projectId ?? null],
  );
  const out: StoredPoint[] = [];
  for (const r of runs.rows) {
    const keys = await db.pool.query<{ key_id: number; name: string }>(
      `SELECT DISTINCT k.id AS key_id, k.name FROM metric_key k
       WHERE k.id IN (SELECT key_id FROM metric_point WHERE run_num = $1 UNION SELECT key_id FROM metric_chunk WHERE run_num = $1)`,
      [r.num],
    );
    for (const k of keys.rows) {
      const p = await readPoints(db.pool, r.num, k.key_id, STEP_MIN, STEP_MAX);
      for (let i = 0; i < p.steps.length; i++)
        out.push({ run: r.name, key: k.name, step: p.steps[i]!, value: p.values[i]!, time: p.times[i]! });
    }
  }
  return out.sort((a, b) =>
    a.run < b.run ? -1 : a.run > b.run ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : a.step - b.step,
  );
}

// What tests of other libs need from the data layer to seed and check bulk data (they enter through this door).
export { importArchive, generateExportTar } from './export';
export { readTar } from './tar';
export { insertMetricPoints } from './metrics';
export { countStoredPoints } from './metric-chunks';
export { curve, type CurveKind } from './metric-curves';
export { insertSamples } from './run-writes';
export { RunNotifier } from './notifier';
/** Queued runs with their tokens, for tests that put jobs on the queue by hand (as another version might). */
export { createQueuedRuns } from './launch';
