import { resolve } from 'node:path';
import { headers } from 'next/headers';
import { redirect } from 'next/navigation';
import { cache } from 'react';
import { TRPCError } from '@trpc/server';
import {
  appRouter,
  clientIpStamping,
  createApiHandler,
  createAuth,
  createCallerFactory,
  createMlflowHandler,
  RedisRateLimiter,
  requestContext,
  startAlertRequeue,
  type Auth,
} from '@aft/api';
import { createDb, RunNotifier, startMetricSweep, type Db } from '@aft/db';
import { createRedis, JobProducer } from '@aft/queue';
import { artifactStoreFromEnv, type ArtifactStore } from '@aft/storage';
import { env } from '../env';

interface Server {
  db: Db;
  notifier: RunNotifier;
  jobs: JobProducer | null;
  rateLimiter: RedisRateLimiter | null;
  auth: Auth;
  handler: (req: Request) => Promise<Response>;
  /** The MLflow-compatible API (/api/2.0/mlflow, /ajax-api/2.0/mlflow, /api/2.0/mlflow-artifacts). */
  mlflow: (req: Request) => Promise<Response>;
  /** Where MLflow uploads are kept: the shared store AFT_ARTIFACT_URL names, else AFT_MLFLOW_ARTIFACT_DIR. */
  artifactDir: ArtifactStore | string;
}

// One pool and one LISTEN connection per server process (kept across hot reloads in development).
const g = globalThis as typeof globalThis & { __aftServer?: Server };

export function server(): Server {
  if (!g.__aftServer) {
    const e = env();
    const db = createDb({
      connectionString: e.DATABASE_URL,
      max: e.AFT_DB_POOL,
      statementTimeoutMs: e.AFT_STATEMENT_TIMEOUT_MS,
    });
    const notifier = new RunNotifier(e.DATABASE_URL);
    // what the background folder of a process that has since stopped left in the tail, folded by one process
    startMetricSweep(db.pool, { everyMs: e.AFT_METRIC_SWEEP_S * 1000 });
    const jobs = e.REDIS_URL ? new JobProducer(createRedis(e.REDIS_URL, 'producer'), e.AFT_QUEUE) : null;
    // alert firings that never reached the queue (Redis away when they fired) are queued again
    if (jobs) startAlertRequeue(db, jobs);
    const rateLimiter =
      e.REDIS_URL && e.AFT_RATE_PER_S > 0
        ? new RedisRateLimiter(createRedis(e.REDIS_URL, 'producer'), e.AFT_RATE_PER_S)
        : null;
    const auth = createAuth({
      db,
      secret: e.AFT_AUTH_SECRET,
      baseURL: e.AFT_PUBLIC_URL ?? {
        allowedHosts: ['localhost:*', '127.0.0.1:*', 'localhost', '127.0.0.1'],
        protocol: 'http' as const,
      },
    });
    const artifactDir = artifactStoreFromEnv(e) ?? resolve(e.AFT_MLFLOW_ARTIFACT_DIR);
    const handler = createApiHandler({
      db,
      notifier,
      auth,
      jobs,
      rateLimiter,
      maxActiveRuns: e.AFT_TEAM_MAX_ACTIVE_RUNS,
      artifactDir,
      streams: { maxLifetimeMs: e.AFT_STREAM_MAX_S * 1000 },
    });
    const mlflow = createMlflowHandler({
      db,
      notifier,
      auth,
      jobs,
      rateLimiter,
      artifactDir,
      teamStorageBytes: e.AFT_TEAM_STORAGE_BYTES,
    });
    g.__aftServer = { db, notifier, jobs, rateLimiter, auth, handler, mlflow, artifactDir };
    if (!clientIpStamping()) {
      console.warn(
        '[web] not served by apps/web/server.mjs: client addresses are unknown, so sign-in throttling counts per ' +
          'account only, per-address limits share one bucket, and the audit log records no addresses',
      );
    }
  }
  return g.__aftServer;
}

/**
 * The request's caller context: the signed-in user (session cookie) and the team they are working in. Cached per
 * request, so the layout and the page look the session up once.
 */
const context = cache(async () =>
  requestContext(
    {
      ...server(),
      maxActiveRuns: env().AFT_TEAM_MAX_ACTIVE_RUNS,
      artifactDir: server().artifactDir,
    },
    await headers(),
  ),
);

/**
 * A tRPC caller for server components: the same procedures, authorization and validation as over HTTP, acting
 * for the signed-in user. Without a session it sends the browser to the sign-in page.
 */
export async function api() {
  const ctx = await context();
  if (!ctx.userId) redirect('/sign-in');
  return createCallerFactory(appRouter)(ctx);
}

/** The signed-in user with their teams, or null (for the header, which also renders on the sign-in page). */
export const viewer = cache(async () => {
  const ctx = await context();
  if (!ctx.userId) return null;
  try {
    return await createCallerFactory(appRouter)(ctx).teams.me();
  } catch (e) {
    if (e instanceof TRPCError && e.code === 'UNAUTHORIZED') return null;
    throw e;
  }
});

/** What the signed-in user may do in the team they are working in (to show or hide buttons; the API decides). */
export async function permissions() {
  const role = (await viewer())?.current?.role ?? 'viewer';
  return { role, canLaunch: role !== 'viewer' };
}
