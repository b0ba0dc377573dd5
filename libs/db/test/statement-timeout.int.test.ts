/**
 * A pool's statement_timeout stops slow statements, except where a write must be allowed to finish; and its
 * connections never JIT-compile a plan (client.ts says why).
 */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from './test-db';
import { seedRun } from '../src/testing';
import { createDb, deleteRun, insertMetricPoints, isStatementTimeout } from '../src';

const t = useTestDatabase();

/** Locks metric_point for `ms` from another connection: statements that write it wait that long. */
async function holdPointsLock(ms: number) {
  const c = await t.db.pool.connect();
  await c.query('BEGIN');
  await c.query('LOCK TABLE metric_point IN SHARE MODE');
  const released = (async () => {
    await new Promise((r) => setTimeout(r, ms));
    await c.query('ROLLBACK');
    c.release();
  })();
  return { released };
}

describe('statementTimeoutMs', () => {
  it('cancels a statement that runs past it, recognisably (isStatementTimeout)', async () => {
    const db = createDb({ connectionString: t.url, max: 2, statementTimeoutMs: 100 });
    try {
      const e = await db.pool.query('SELECT pg_sleep(1)').catch((err: unknown) => err);
      expect(isStatementTimeout(e)).toBe(true);
      const p = await db.prisma.$queryRawUnsafe('SELECT pg_sleep(1)').catch((err: unknown) => err);
      expect(isStatementTimeout(p)).toBe(true);
    } finally {
      await db.close();
    }
  });

  it('lets deleteRun finish however long its deletes take', async () => {
    const db = createDb({ connectionString: t.url, max: 3, statementTimeoutMs: 100 });
    try {
      const { team, run } = await seedRun(t.db);
      await insertMetricPoints(t.db.pool, run.id, [{ key: 'loss', step: 0, value: 1 }]);
      const lock = await holdPointsLock(600);
      await deleteRun(db.pool, run.id, team.id);
      await lock.released;
      expect(await t.db.prisma.run.count({ where: { id: run.id } })).toBe(0);
    } finally {
      await db.close();
    }
  });
});

describe('createDb', () => {
  it('turns JIT off on every connection, Prisma’s included, even where a plan is estimated past its threshold', async () => {
    const db = createDb({ connectionString: t.url, max: 2 });
    try {
      expect((await db.pool.query<{ jit: string }>('SHOW jit')).rows[0]!.jit).toBe('off');
      expect(await db.prisma.$queryRawUnsafe('SHOW jit')).toEqual([{ jit: 'off' }]);
      const c = await db.pool.connect();
      try {
        await c.query('SET jit_above_cost = 0');
        const plan = await c.query<{ 'QUERY PLAN': string }>(
          'EXPLAIN (ANALYZE, FORMAT TEXT) SELECT sum(g) FROM generate_series(1, 1000) g',
        );
        expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).not.toMatch(/JIT:/);
      } finally {
        c.release();
      }
    } finally {
      await db.close();
    }
  });

  it('keeps the options a URL gives, and PGOPTIONS, beside JIT off', async () => {
    const url = new URL(t.url);
    url.searchParams.set('options', '-c work_mem=5MB');
    const db = createDb({ connectionString: url.toString(), max: 1 });
    const before = process.env['PGOPTIONS'];
    process.env['PGOPTIONS'] = '-c work_mem=7MB';
    const env = createDb({ connectionString: t.url, max: 1 });
    try {
      expect((await db.pool.query('SHOW work_mem')).rows[0]).toEqual({ work_mem: '5MB' });
      expect((await db.pool.query('SHOW jit')).rows[0]).toEqual({ jit: 'off' });
      expect((await env.pool.query('SHOW work_mem')).rows[0]).toEqual({ work_mem: '7MB' });
      expect((await env.pool.query('SHOW jit')).rows[0]).toEqual({ jit: 'off' });
    } finally {
      if (before === undefined) delete process.env['PGOPTIONS'];
      else process.env['PGOPTIONS'] = before;
      await db.close();
      await env.close();
    }
  });
});
