import { initTRPC, TRPCError } from '@trpc/server';
import { ZodError } from 'zod';
import { findUnstorable, MAX_JSON_DEPTH } from '@aft/contracts';
import {
  actingMembership,
  ActiveRunCapError,
  BadCursorError,
  findApiKey,
  isRunToken,
  isStatementTimeout,
  markApiKeyUsed,
  MetricKeyCapError,
  resolveRunToken,
  RunNotFoundError,
  type ApiKeyScope,
  type Db,
  type MemberRole,
  type RunGrant,
  type RunNotifier,
} from '@aft/db';
import type { JobProducer } from '@aft/queue';
import type { RateLimiter } from './rate-limit';
import { assertRunAccess } from './run-access';
import type { StreamLimits } from './streams';
import type { ArtifactFiles } from './artifact-files';

export type Role = MemberRole;
/** What an actor may do: the API-key scopes, plus `manage` (members, invitations, keys, audit) for owners. */
export type Permission = ApiKeyScope | 'manage';

/** What each role of a team may do: viewers read, members run and annotate, owners also manage. */
export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  viewer: ['read'],
  member: ['read', 'log', 'launch'],
  owner: ['read', 'log', 'launch', 'manage'],
};

/** Who a request acts for: a team, through an API key, a signed-in member of it, or a training job's run token. */
export interface Actor {
  teamId: string;
  via: 'key' | 'user' | 'run';
  keyId: string | null;
  userId: string | null;
  /** The member's role; null for a key. */
  role: Role | null;
  scopes: readonly Permission[];
  /** For a run token: the run it reports on and the runs it may read (run-access.ts); null otherwise. */
  run: RunGrant | null;
}

export interface ContextInner {
  db: Db;
  notifier: RunNotifier;
  /** The raw API key from `x-api-key` or `Authorization: Bearer`, if the request sent one. */
  apiKey: string | null;
  /** The signed-in user (from the session cookie), if any. */
  userId?: string | null;
  /** Looks the request's session up again (a long stream re-checks it was not signed out): the user, or null. */
  revalidateSession?: (() => Promise<string | null>) | null;
  /** How often long streams re-check access and how long they may stay open (streams.ts has the defaults). */
  streams?: StreamLimits;
  /** Slug of the team a signed-in user acts in (`x-aft-team` header or `aft_team` cookie); else their first team. */
  team?: string | null;
  /** The client's address, for the audit log. */
  ip?: string | null;
  /** Where launches go; null when this server has no queue (runs can still be logged, not launched). */
  jobs?: JobProducer | null;
  /** Ingestion rate per API key; null = unlimited. */
  rateLimiter?: RateLimiter | null;
  /** Where the MLflow API keeps uploaded files (one folder per run); null when this server keeps none. */
  artifactDir?: ArtifactFiles | null;
  /** What this request has read so far, shared by the calls of a batch (LIMITS.pointsPerRequest). */
  reads?: { points: number };
  /** Queued plus running runs a team may have at once (launches past it are refused); default in libs/db. */
  maxActiveRuns?: number;
}

/** A 429 that says when to come back; the HTTP handler turns `retryAfterS` into a `Retry-After` header. */
export class RateLimitedError extends Error {
  constructor(
    readonly retryAfterS: number,
    limit: number,
  ) {
    super(
      `this API key is over its ingestion rate of ${limit.toLocaleString('en-US')} points or samples a second; retry after ${retryAfterS} s`,
    );
  }
}

/** Charges a write of `units` points or samples to the caller's key (the dashboard's own requests are not limited). */
export async function chargeRate(ctx: Context & { actor: Actor }, units: number): Promise<void> {
  const bucket = rateBucket(ctx.actor);
  if (!ctx.rateLimiter || !bucket) return;
  // the limiter failing (Redis away) must not stop ingestion: it fails open
  const r = await ctx.rateLimiter.take(bucket, units).catch(() => ({ ok: true as const }));
  if (!r.ok) {
    const cause = new RateLimitedError(r.retryAfterS, r.limit);
    throw new TRPCError({ code: 'TOO_MANY_REQUESTS', message: cause.message, cause });
  }
}

/** Whose ingestion rate a write counts against: the API key, or the run a run token reports on (users: none). */
export function rateBucket(actor: Actor): string | null {
  return actor.keyId ?? (actor.run ? `run:${actor.run.runId}` : null);
}

/** What tests use directly (with `createCaller`); the route handler wraps it with the request's headers. */
export function createContextInner(opts: ContextInner) {
  // one object per request: middlewares copy the context, and every copy must count into the same budget
  return { ...opts, reads: opts.reads ?? { points: 0 } };
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
  const issues = e.issues.slice(0, 8).map((i) => {
    // a record key's own issue says what is wrong with it; the wrapper only says "Invalid key in record"
    const why = i.code === 'invalid_key' && i.issues[0] ? `a key ${i.issues[0].message}` : i.message;
    return `${i.path.length ? i.path.join('.') : 'input'}: ${why}`;
  });
  const more = e.issues.length > 8 ? `; and ${e.issues.length - 8} more` : '';
  return `invalid input — ${issues.join('; ')}${more}`;
}

/**
 * Every procedure declares what it needs: a permission of the caller in the team (`read`, `log`, `launch`,
 * `manage`), or `account` for what a signed-in person does outside any one team (their teams, accepting an
 * invitation). `keyOnly` marks writes that only trainers and workers make. A test checks that none is missing.
 */
export interface ProcedureMeta {
  scope: Permission | 'account';
  keyOnly?: boolean;
}

const t = initTRPC
  .context<Context>()
  .meta<ProcedureMeta>()
  .create({
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
    if (cause instanceof MetricKeyCapError) throw new TRPCError({ code: 'BAD_REQUEST', message: cause.message, cause });
    if (isStatementTimeout(cause)) {
      throw new TRPCError({
        code: 'SERVICE_UNAVAILABLE',
        message: 'the database query took too long and was stopped: ask for less (fewer runs, keys or steps), or retry',
        cause,
      });
    }
    if (cause instanceof ActiveRunCapError)
      throw new TRPCError({ code: 'TOO_MANY_REQUESTS', message: cause.message, cause });
  }
  return res;
});

/**
 * Text Postgres cannot store (NUL, lone surrogates) is refused in every input, naming the field, before it is parsed.
 * The schemas refuse it too (`pgText`); this is for the string a schema missed, which must still be a 400, not a 500.
 */
const storableInput = t.middleware(async ({ next, getRawInput }) => {
  const bad = findUnstorable(await getRawInput(), 2 * MAX_JSON_DEPTH);
  if (bad) {
    const at = bad.path.length ? bad.path.join('.') : 'input';
    throw new TRPCError({ code: 'BAD_REQUEST', message: `invalid input — ${at}: ${bad.message}` });
  }
  return next();
});

export const publicProcedure = t.procedure.use(errors).use(storableInput);

/**
 * Who the request acts for. Run tokens are accepted only where the caller can enforce their run scope (`runTokens`:
 * the tRPC procedures, through `assertRunAccess`); elsewhere (the MLflow API, exports) they are refused.
 */
export async function resolveActor(ctx: Context, opts: { runTokens?: boolean } = {}): Promise<Actor> {
  if (ctx.apiKey && isRunToken(ctx.apiKey)) {
    if (!opts.runTokens) {
      throw new TRPCError({
        code: 'FORBIDDEN',
        message: 'a run token only reports on its run through the platform API; use an API key here',
      });
    }
    const grant = await resolveRunToken(ctx.db.pool, ctx.apiKey);
    if (!grant) {
      throw new TRPCError({ code: 'UNAUTHORIZED', message: 'run token not recognised, expired, or its run has ended' });
    }
    return {
      teamId: grant.teamId,
      via: 'run',
      keyId: null,
      userId: null,
      role: null,
      scopes: ['read', 'log'],
      run: grant,
    };
  }
  if (ctx.apiKey) {
    // Not cached: a revoked key must be refused on its very next request, by every server process.
    const key = await findApiKey(ctx.db, ctx.apiKey);
    if (!key || key.revoked) {
      throw new TRPCError({ code: 'UNAUTHORIZED', message: 'API key not recognised or revoked' });
    }
    if (key.stale) void markApiKeyUsed(ctx.db, key.id).catch(() => undefined);
    return {
      teamId: key.teamId,
      via: 'key',
      keyId: key.id,
      userId: null,
      role: null,
      scopes: key.scopes,
      run: null,
    };
  }
  if (ctx.userId) {
    // The requested team if the user is in it (a stale cookie falls back), else the team they joined first.
    const m = await actingMembership(ctx.db, ctx.userId, ctx.team);
    if (!m) {
      throw new TRPCError({
        code: 'FORBIDDEN',
        message: 'you are not a member of any team: create one or open an invitation link',
      });
    }
    return {
      teamId: m.teamId,
      via: 'user',
      keyId: null,
      userId: ctx.userId,
      role: m.role,
      scopes: ROLE_PERMISSIONS[m.role],
      run: null,
    };
  }
  throw new TRPCError({
    code: 'UNAUTHORIZED',
    message:
      'not signed in and no API key: sign in, or send a key as `x-api-key: <key>` or `Authorization: Bearer <key>`',
  });
}

/** Every procedure that touches team data: knows which team it acts for. */
export const teamProcedure = publicProcedure.use(async ({ ctx, next, path, getRawInput }) => {
  const actor = await resolveActor(ctx, { runTokens: true });
  if (actor.run) assertRunAccess(actor.run, path, await getRawInput());
  return next({ ctx: { ...ctx, actor } });
});

function denial(actor: Actor, need: Permission): string {
  if (actor.via === 'run') return `a run token cannot ${need}`;
  if (actor.via === 'key') {
    return need === 'manage'
      ? 'managing members, invitations and keys needs a signed-in owner, not an API key'
      : `this API key lacks the \`${need}\` scope`;
  }
  const allowed = (Object.keys(ROLE_PERMISSIONS) as Role[]).filter((r) => ROLE_PERMISSIONS[r].includes(need));
  return `your role in this team is ${actor.role}; this needs ${allowed.join(' or ')}`;
}

const requireScope = (scope: Permission) =>
  t.middleware(async ({ ctx, next }) => {
    const actor = (ctx as Context & { actor: Actor }).actor;
    if (!actor.scopes.includes(scope)) throw new TRPCError({ code: 'FORBIDDEN', message: denial(actor, scope) });
    return next();
  });

/** Reads of the team's projects, runs, metrics, samples, sweeps: the `read` scope (every role). */
export const readProcedure = teamProcedure.meta({ scope: 'read' }).use(requireScope('read'));

/** Writes from trainers, workers and members annotating runs: the `log` scope. */
export const writeProcedure = teamProcedure.meta({ scope: 'log' }).use(requireScope('log'));

/** Writes from trainers and workers that only an API key may make (never the dashboard): the `log` scope. */
export const logProcedure = teamProcedure
  .meta({ scope: 'log', keyOnly: true })
  .use(async ({ ctx, next }) => {
    if (ctx.actor.via === 'user') {
      throw new TRPCError({
        code: 'FORBIDDEN',
        message: 'logging needs an API key: send it as `x-api-key: <key>` or `Authorization: Bearer <key>`',
      });
    }
    return next();
  })
  .use(requireScope('log'));

/** Managing the team: members, invitations, API keys, the audit log. Owners only. */
export const manageProcedure = teamProcedure.meta({ scope: 'manage' }).use(requireScope('manage'));

/** What a signed-in person does outside any one team: list and create their teams, accept an invitation. */
export const accountProcedure = publicProcedure.meta({ scope: 'account' }).use(async ({ ctx, next }) => {
  if (!ctx.userId) {
    throw new TRPCError({
      code: ctx.apiKey ? 'FORBIDDEN' : 'UNAUTHORIZED',
      message: ctx.apiKey ? 'this needs a signed-in user, not an API key' : 'not signed in',
    });
  }
  return next({ ctx: { ...ctx, userId: ctx.userId } });
});

/** Changes to training runs beyond logging (deleting them): the `launch` scope (members and owners have it). */
export const runAdminProcedure = teamProcedure.meta({ scope: 'launch' }).use(requireScope('launch'));

/** Launching and canceling training: an API key needs the `launch` scope (members and owners have it). */
export const launchProcedure = runAdminProcedure.use(async ({ ctx, next }) => {
  if (!ctx.jobs) {
    throw new TRPCError({
      code: 'PRECONDITION_FAILED',
      message: 'this server has no job queue configured (set REDIS_URL); runs can be logged but not launched',
    });
  }
  return next({ ctx: { ...ctx, jobs: ctx.jobs } });
});
