/**
 * Stands up the real app for end-to-end tests and benchmarks: a fresh database migrated with
 * `prisma migrate deploy` (the path users take), the seed (a user who owns the team "local", and an API key of it),
 * and the built web app started with `apps/web/server.mjs` (`next start` that knows client addresses) on a free
 * port. `stop()` kills the server and drops the database.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import pg from 'pg';
import { createRedis, JobProducer } from '@aft/queue';

/** Removes a test queue (and its GPU, control and alerts queues) from Redis. */
async function obliterate(queue: string): Promise<void> {
  const p = new JobProducer(createRedis(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379', 'worker'), queue);
  await Promise.all([
    p.runs.obliterate({ force: true }),
    p.gpu.obliterate({ force: true }),
    p.control.obliterate({ force: true }),
    p.alerts.queue.obliterate({ force: true }),
  ]).catch(() => undefined);
  await p.close();
}

export const ROOT = resolve(import.meta.dirname, '../..');
export const PG_ADMIN_URL = process.env['AFT_TEST_PG_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

export async function adminQuery(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

export function ensureWebBuilt(): void {
  if (!existsSync(resolve(ROOT, 'apps/web/.next/BUILD_ID'))) {
    execFileSync('npx', ['next', 'build', 'apps/web'], {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
    });
  }
}

export interface AppServer {
  baseUrl: string;
  apiKey: string;
  /** The seeded user, owner of the team "local". */
  email: string;
  password: string;
  databaseUrl: string;
  dbName: string;
  pid: number;
  /** The queue this app launches onto (a random name per app). */
  queue: string;
  stop(): Promise<void>;
}

/**
 * `worker: true` also starts a worker process on the app's own queue (artifacts under tmp/), so sweeps launched
 * from the dashboard train.
 */
export async function startApp(prefix = 'aft_app', opts: { worker?: boolean } = {}): Promise<AppServer> {
  if (!existsSync(resolve(ROOT, 'apps/web/.next/BUILD_ID'))) {
    throw new Error('the web app is not built: run `npm test` (it builds first) or `npx next build apps/web`');
  }
  const dbName = `${prefix}_${randomBytes(5).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${dbName}`);
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${dbName}`;
  const databaseUrl = u.toString();
  const queue = `aft-runs-${dbName}`;
  const env = {
    ...process.env,
    DATABASE_URL: databaseUrl,
    NEXT_TELEMETRY_DISABLED: '1',
    AFT_QUEUE: queue,
    AFT_AUTH_SECRET: randomBytes(32).toString('base64url'),
    // alert tests post to receivers on 127.0.0.1, which webhooks may only name with this set
    AFT_ALERTS_ALLOW_PRIVATE: '1',
  };
  const drop = () => adminQuery(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
  try {
    execFileSync('npx', ['prisma', 'migrate', 'deploy'], { cwd: ROOT, env, stdio: 'pipe' });
    mkdirSync(resolve(ROOT, 'tmp'), { recursive: true });
    const keyFile = resolve(ROOT, `tmp/${dbName}.key`);
    const passwordFile = resolve(ROOT, `tmp/${dbName}.password`);
    const seeded = JSON.parse(
      execFileSync('npx', ['tsx', 'prisma/seed.ts'], {
        cwd: ROOT,
        env: { ...env, AFT_KEY_FILE: keyFile, AFT_PASSWORD_FILE: passwordFile },
        stdio: 'pipe',
      }).toString(),
    ) as { apiKey: string; email: string; password: string };
    const { apiKey, email, password } = seeded;
    rmSync(keyFile, { force: true });
    rmSync(passwordFile, { force: true });
    const port = await freePort();
    const server = spawn(
      process.execPath,
      [
        // e.g. AFT_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the server in a benchmark
        ...(process.env['AFT_SERVER_NODE_ARGS']?.split(' ').filter(Boolean) ?? []),
        // what production runs: it stamps each request with the socket's address (libs/api/src/client-ip.ts)
        'apps/web/server.mjs',
        '-H',
        '127.0.0.1',
        '-p',
        String(port),
      ],
      { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let log = '';
    server.stdout?.on('data', (d) => (log += d));
    server.stderr?.on('data', (d) => (log += d));
    const baseUrl = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        if ((await fetch(`${baseUrl}/sign-in`)).status < 500) break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline || server.exitCode !== null) {
        server.kill('SIGKILL');
        throw new Error(`web app did not start:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const artifacts = resolve(ROOT, `tmp/${dbName}-artifacts`);
    const worker = opts.worker
      ? spawn(process.execPath, ['--import', 'tsx', 'apps/worker/src/main.ts'], {
          cwd: ROOT,
          env: { ...env, AFT_URL: baseUrl, AFT_ARTIFACT_DIR: artifacts, AFT_CONCURRENCY: '2' },
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : null;
    worker?.stdout?.on('data', (d) => (log += d));
    worker?.stderr?.on('data', (d) => (log += d));
    return {
      baseUrl,
      apiKey,
      email,
      password,
      databaseUrl,
      dbName,
      queue,
      pid: server.pid!,
      async stop() {
        worker?.kill('SIGTERM');
        server.kill('SIGTERM');
        await new Promise((r) => setTimeout(r, 300));
        if (server.exitCode === null) server.kill('SIGKILL');
        if (worker) {
          await new Promise((r) => (worker.exitCode !== null ? r(null) : worker.once('exit', r)));
          await obliterate(queue);
          rmSync(artifacts, { recursive: true, force: true });
        }
        await drop();
      },
    };
  } catch (e) {
    await drop();
    throw e;
  }
}

/** Signs a browser context in (its cookies then carry the session), as a person would on /sign-in. */
export async function signIn(
  context: {
    request: {
      post(
        url: string,
        opts: { data: unknown; headers: Record<string, string> },
      ): Promise<{ ok(): boolean; status(): number; text(): Promise<string> }>;
    };
  },
  app: Pick<AppServer, 'baseUrl' | 'email' | 'password'>,
): Promise<void> {
  const res = await context.request.post(`${app.baseUrl}/api/auth/sign-in/email`, {
    data: { email: app.email, password: app.password },
    headers: { origin: app.baseUrl },
  });
  if (!res.ok()) throw new Error(`sign-in failed: HTTP ${res.status()} ${await res.text()}`);
}
