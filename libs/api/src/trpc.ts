import { initTRPC, TRPCError } from '@trpc/server';
import { ZodError } from 'zod';
import { BadCursorError, hashApiKey, RunNotFoundError, type ApiKeyScope, type Db, type RunNotifier } from '@aft/db';
import type { JobProducer } from '@aft/queue';
import type { RateLimiter } from './rate-limit';

/** Who a request acts for: a team, through an API key or (until sign-in lands) the local default team. */
export interface Actor {
  teamId: string;
  via: 'key' | 'local';
  keyId: string | null;
  scopes: readonly ApiKeyScope[];
}

export interface ContextInner {
  db: Db;
  notifier: RunNotifier;
  /** The raw API key from `x-api-key` or `Authorization: Bearer`, if the request sent one. */
  apiKey: string | null;
  /** Slug of the team the dashboard acts for without a key; null turns keyless access off. */
  localTeam: string | null;
  /** Where launches go; null when this server has no queue (runs can still be logged, not launched). */
  jobs?: JobProducer | null;
  /** Ingestion rate per API key; null = unlimited. */
  rateLimiter?: RateLimiter | null;
}

/** A 429 that says when to come back; the HTTP handler turns `retryAfterS` into a `Retry-After` header. */
export class RateLimitedError extends Error {
  constructor(
    readonly retryAfterS: number,
    limit: number,
  ) {
    super(`this API key is over its ingestion rate of ${limit.toLocaleString('en-US')} points or samples a second; retry after ${retryAfterS} s`);
  }
}

/** Charges a write of `units` points or samples to the caller's key (the dashboard's own requests are not limited). */
export async function chargeRate(ctx: Context & { actor: Actor }, units: number): Promise<void> {
  if (!ctx.rateLimiter || !ctx.actor.keyId) return;
  // the limiter failing (Redis away) must not stop ingestion: it fails open
  const r = await ctx.rateLimiter.take(ctx.actor.keyId, units).catch(() => ({ ok: true as const }));
  if (!r.ok) {
    const cause = new RateLimitedError(r.retryAfterS, r.limit);
    throw new TRPCError({ code: 'TOO_MANY_REQUESTS', message: cause.message, cause });
  }
}

/** What tests use directly (with `createCaller`); the route handler wraps it with the request's headers. */
export function createContextInner(opts: ContextInner) {
  return { ...opts };
}
export type Context = ReturnType<typeof createContextInner>;

export function apiKeyFromHeaders(headers: Headers): string | null {
  const direct = headers.get('x-api-key');
  if (direct) return direct.trim();
  const auth = headers.get('authorization');
  const m = auth?.match(/^Bearer\s+(.+)$/i);
  return m?.[1]?.trim() ?? null;
}

/** Turns zod issues into one line a person can act on: `points.3.step: step must be an integer; …`. */
export function describeZodError(e: ZodError): string {
  const issues = e.issues.slice(0, 8).map((i) => `${i.path.length ? i.path.join('.') : 'input'}: ${i.message}`);
  const more = e.issues.length > 8 ? `; and ${e.issues.length - 8} more` : '';
  return `invalid input — ${issues.join('; ')}${more}`;
}

/** Every procedure declares what it needs: the API-key scope that allows it. A test checks that none is missing. */
export interface ProcedureMeta {
  scope: ApiKeyScope;
}

const t = initTRPC.context<Context>().meta<ProcedureMeta>().create({
  errorFormatter({ shape, error }) {
    const zod = error.cause instanceof ZodError ? error.cause : null;
    return {
      ...shape,
      message: zod ? describeZodError(zod) : shape.message,
      data: { ...shape.data, stack: undefined, issues: zod?.issues.slice(0, 50) ?? null },
    };
  },
  sse: {
    ping: { enabled: true, intervalMs: 5_000 },
    client: { reconnectAfterInactivityMs: 12_000 },
  },
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;

/** Maps the data layer's typed errors to HTTP-shaped ones; anything else stays a 500 without internals. */
const errors = t.middleware(async ({ next }) => {
  const res = await next();
  if (!res.ok) {
    const cause = res.error.cause;
    if (cause instanceof RunNotFoundError) {
      throw new TRPCError({ code: 'NOT_FOUND', message: cause.message, cause });
    }
    if (cause instanceof BadCursorError) throw new TRPCError({ code: 'BAD_REQUEST', message: cause.message, cause });
  }
  return res;
});

export const publicProcedure = t.procedure.use(errors);

// Team slugs never change, so the local team's id is looked up once per process and database.
const localTeamIds = new WeakMap<object, Map<string, string>>();

async function resolveActor(ctx: Context): Promise<Actor> {
  if (ctx.apiKey) {
    // Not cached: a revoked key must be refused on its very next request, by every server process.
    const res = await ctx.db.pool.query<{ id: string; team_id: string; scopes: string[]; revoked: boolean; stale: boolean }>(
      `SELECT id, team_id, scopes, revoked_at IS NOT NULL AS revoked,
              (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') AS stale
       FROM api_key WHERE hash = $1`,
      [hashApiKey(ctx.apiKey)],
    );
    const key = res.rows[0];
    if (!key || key.revoked) {
      throw new TRPCError({ code: 'UNAUTHORIZED', message: 'API key not recognised or revoked' });
    }
    if (key.stale) {
      void ctx.db.pool.query('UPDATE api_key SET last_used_at = now() WHERE id = $1', [key.id]).catch(() => undefined);
    }
    return { teamId: key.team_id, via: 'key', keyId: key.id, scopes: key.scopes as ApiKeyScope[] };
  }
  if (ctx.localTeam) {
    let cache = localTeamIds.get(ctx.db.pool);
    if (!cache) localTeamIds.set(ctx.db.pool, (cache = new Map()));
    let teamId = cache.get(ctx.localTeam);
    if (!teamId) {
      const team = await ctx.db.prisma.team.findUnique({ where: { slug: ctx.localTeam }, select: { id: true } });
      if (!team) {
        throw new TRPCError({
          code: 'PRECONDITION_FAILED',
          message: `the local team "${ctx.localTeam}" does not exist; run \`npm run db:seed\``,
        });
      }
      cache.set(ctx.localTeam, (teamId = team.id));
    }
    return { teamId, via: 'local', keyId: null, scopes: ['log', 'launch', 'read'] };
  }
  throw new TRPCError({
    code: 'UNAUTHORIZED',
    message: 'missing API key: send it as `x-api-key: <key>` or `Authorization: Bearer <key>`',
  });
}

/** Every procedure that touches team data: knows which team it acts for. */
export const teamProcedure = publicProcedure.use(async ({ ctx, next }) => {
  const actor = await resolveActor(ctx);
  return next({ ctx: { ...ctx, actor } });
});

const requireScope = (scope: ApiKeyScope) =>
  t.middleware(async ({ ctx, next }) => {
    const actor = (ctx as Context & { actor: Actor }).actor;
    if (!actor.scopes.includes(scope)) {
      throw new TRPCError({ code: 'FORBIDDEN', message: `this API key lacks the \`${scope}\` scope` });
    }
    return next();
  });

/** Reads of the team's projects, runs, metrics, samples, sweeps: the `read` scope. */
export const readProcedure = teamProcedure.meta({ scope: 'read' }).use(requireScope('read'));

/** Writes from trainers, workers and people annotating runs: the `log` scope. */
export const writeProcedure = teamProcedure.meta({ scope: 'log' }).use(requireScope('log'));

/** Writes from trainers and workers that only an API key may make (never the keyless dashboard): the `log` scope. */
export const logProcedure = teamProcedure
  .meta({ scope: 'log' })
  .use(async ({ ctx, next }) => {
    if (ctx.actor.via !== 'key') {
      throw new TRPCError({
        code: 'UNAUTHORIZED',
        message: 'logging needs an API key: send it as `x-api-key: <key>` or `Authorization: Bearer <key>`',
      });
    }
    return next();
  })
  .use(requireScope('log'));

/** Launching and canceling training: an API key needs the `launch` scope (the dashboard has it). */
export const launchProcedure = teamProcedure
  .meta({ scope: 'launch' })
  .use(requireScope('launch'))
  .use(async ({ ctx, next }) => {
    if (!ctx.jobs) {
      throw new TRPCError({
        code: 'PRECONDITION_FAILED',
        message: 'this server has no job queue configured (set REDIS_URL); runs can be logged but not launched',
      });
    }
    return next({ ctx: { ...ctx, jobs: ctx.jobs } });
  });
