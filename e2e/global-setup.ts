/**
 * End-to-end fixture: a fresh database migrated with `prisma migrate deploy` (the path users take), the seed,
 * and the built web app started with `next start` on a free port. Tests get the URL and an API key by inject().
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';

const ROOT = resolve(import.meta.dirname, '..');
const PG = process.env['AFT_TEST_PG_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

declare module 'vitest' {
  export interface ProvidedContext {
    baseUrl: string;
    apiKey: string;
    databaseUrl: string;
  }
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

async function admin(sql: string) {
  const c = new pg.Client({ connectionString: PG });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

let server: ChildProcess | null = null;
let dbName = '';

export async function setup(project: TestProject) {
  if (!existsSync(resolve(ROOT, 'apps/web/.next/BUILD_ID'))) {
    throw new Error('the web app is not built: run `npm test` (it builds first) or `npx nx run web:build`');
  }
  dbName = `aft_e2e_${randomBytes(5).toString('hex')}`;
  await admin(`CREATE DATABASE ${dbName}`);
  const u = new URL(PG);
  u.pathname = `/${dbName}`;
  const databaseUrl = u.toString();
  const env = { ...process.env, DATABASE_URL: databaseUrl, NEXT_TELEMETRY_DISABLED: '1' };
  execFileSync('npx', ['prisma', 'migrate', 'deploy'], { cwd: ROOT, env, stdio: 'pipe' });
  mkdirSync(resolve(ROOT, 'tmp'), { recursive: true });
  const keyFile = resolve(ROOT, `tmp/${dbName}.key`);
  execFileSync('npx', ['tsx', 'prisma/seed.ts'], { cwd: ROOT, env: { ...env, AFT_KEY_FILE: keyFile }, stdio: 'pipe' });
  const apiKey = readFileSync(keyFile, 'utf8').trim();

  const port = await freePort();
  server = spawn(process.execPath, ['node_modules/next/dist/bin/next', 'start', 'apps/web', '-H', '127.0.0.1', '-p', String(port)], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  server.stdout?.on('data', (d) => (log += d));
  server.stderr?.on('data', (d) => (log += d));
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const r = await fetch(`${baseUrl}/`);
      if (r.status < 500) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`web app did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  project.provide('baseUrl', baseUrl);
  project.provide('apiKey', apiKey);
  project.provide('databaseUrl', databaseUrl);
}

export async function teardown() {
  server?.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  if (dbName) await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
}
