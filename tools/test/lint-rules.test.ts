/**
 * The layer rules of docs/architecture.md are lint rules; these tests show each one firing on a violation (and
 * staying quiet on the allowed form), so that a config edit that silently disables one fails here.
 */
import { readFileSync } from 'node:fs';
import { ESLint } from 'eslint';
import * as prettier from 'prettier';
import { describe, expect, it } from 'vitest';

const eslint = new ESLint({ cwd: process.cwd() });

async function problems(file: string, code: string): Promise<string[]> {
  const [r] = await eslint.lintText(code, { filePath: file });
  return r!.messages.filter((m) => m.ruleId?.startsWith('no-restricted')).map((m) => `${m.ruleId}: ${m.message}`);
}

const API_FILE = 'libs/api/src/router/lint-probe.ts';

describe('libs/db owns all SQL', () => {
  it.each([
    ['a pg import', `import { Pool } from 'pg';\nexport const p = Pool;`],
    ['a Prisma import', `import { PrismaClient } from '@prisma/client';\nexport const p = PrismaClient;`],
    ['a SELECT in a template', 'export const q = `SELECT id FROM run WHERE id = $1`;'],
    ['an UPDATE in a string', `export const q = 'UPDATE run SET name = $2 WHERE id = $1';`],
    ['a CTE', 'export const q = `\n  WITH u AS (DELETE FROM run RETURNING id) SELECT 1`;'],
    ['a query through the pool', `export const f = (ctx: any) => ctx.db.pool.query(ctx.sql);`],
    ['a Prisma call through the handle', `export const f = (ctx: any) => ctx.db.prisma.run.findMany();`],
    ['a raw Prisma query', 'export const f = (db: any) => db.$queryRaw`x`;'],
  ])('refuses %s in libs/api', async (_what, code) => {
    expect(await problems(API_FILE, code)).not.toEqual([]);
  });

  it('lets libs/api hand the Db handle to a libs/db function and write prose', async () => {
    const code = `declare function listRuns(pool: unknown, id: string): unknown;
export const f = (ctx: { db: { pool: unknown } }) => listRuns(ctx.db.pool, 'x');
export const msg = 'update the run name, then select from the list';`;
    expect(await problems(API_FILE, code)).toEqual([]);
  });

  it('leaves SQL alone in libs/db', async () => {
    expect(await problems('libs/db/src/lint-probe.ts', 'export const q = `SELECT id FROM run`;')).toEqual([]);
  });
});

describe('the format is part of lint', () => {
  it('npm run lint runs prettier --check over the tree', () => {
    const scripts = JSON.parse(readFileSync('package.json', 'utf8')).scripts as Record<string, string>;
    expect(scripts['lint']).toMatch(/prettier --check \./);
  });

  it('a line past 120 columns fails the check, one within passes', async () => {
    const file = 'libs/api/src/format-probe.ts';
    const opts = { ...(await prettier.resolveConfig(file)), filepath: file };
    const args = Array.from({ length: 12 }, (_, i) => `argumentNumber${i}`).join(', ');
    expect(await prettier.check(`export const f = g(${args});\n`, opts)).toBe(false);
    expect(await prettier.check('export const f = g(a, b);\n', opts)).toBe(true);
  });
});
