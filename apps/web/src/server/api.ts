import { appRouter, createApiHandler, createCallerFactory, createContextInner, RedisRateLimiter } from '@aft/api';
import { createDb, RunNotifier, type Db } from '@aft/db';
import { createRedis, JobProducer } from '@aft/queue';
import { env } from '../env';

interface Server {
  db: Db;
  notifier: RunNotifier;
  jobs: JobProducer | null;
  handler: (req: Request) => Promise<Response>;
}

// One pool and one LISTEN connection per server process (kept across hot reloads in development).
const g = globalThis as typeof globalThis & { __aftServer?: Server };

export function server(): Server {
  if (!g.__aftServer) {
    const e = env();
    const db = createDb({ connectionString: e.DATABASE_URL, max: e.AFT_DB_POOL });
    const notifier = new RunNotifier(e.DATABASE_URL);
    const jobs = e.REDIS_URL ? new JobProducer(createRedis(e.REDIS_URL, 'producer'), e.AFT_QUEUE) : null;
    const rateLimiter = e.REDIS_URL && e.AFT_RATE_PER_S > 0 ? new RedisRateLimiter(createRedis(e.REDIS_URL, 'producer'), e.AFT_RATE_PER_S) : null;
    const handler = createApiHandler({ db, notifier, localTeam: e.AFT_LOCAL_TEAM || null, jobs, rateLimiter });
    g.__aftServer = { db, notifier, jobs, handler };
  }
  return g.__aftServer;
}

/** A tRPC caller for server components: the same procedures, authorization and validation as over HTTP. */
export function api() {
  const s = server();
  return createCallerFactory(appRouter)(
    createContextInner({ db: s.db, notifier: s.notifier, jobs: s.jobs, apiKey: null, localTeam: env().AFT_LOCAL_TEAM || null }),
  );
}
