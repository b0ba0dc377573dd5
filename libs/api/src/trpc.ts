import { initTRPC, TRPCError } from '@trpc/server';
import { ZodError } from 'zod';
import { BadCursorError, hashApiKey, RunNotFoundError, type ApiKeyScope, type Db, type RunNotifier } from '@aft/db';

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

const t = initTRPC.context<Context>().create({
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

async function resolveActor(ctx: Context): Promise<Actor> {
  if (ctx.apiKey) {
    const key = await ctx.db.prisma.apiKey.findUnique({
      where: { hash: hashApiKey(ctx.apiKey) },
      select: { id: true, teamId: true, scopes: true, revokedAt: true, lastUsedAt: true },
    });
    if (!key || key.revokedAt) {
      throw new TRPCError({ code: 'UNAUTHORIZED', message: 'API key not recognised or revoked' });
    }
    if (!key.lastUsedAt || Date.now() - key.lastUsedAt.getTime() > 60_000) {
      void ctx.db.prisma.apiKey
        .update({ where: { id: key.id }, data: { lastUsedAt: new Date() }, select: { id: true } })
        .catch(() => undefined);
    }
    return { teamId: key.teamId, via: 'key', keyId: key.id, scopes: key.scopes as ApiKeyScope[] };
  }
  if (ctx.localTeam) {
    const team = await ctx.db.prisma.team.findUnique({ where: { slug: ctx.localTeam }, select: { id: true } });
    if (!team) {
      throw new TRPCError({
        code: 'PRECONDITION_FAILED',
        message: `the local team "${ctx.localTeam}" does not exist; run \`npm run db:seed\``,
      });
    }
    return { teamId: team.id, via: 'local', keyId: null, scopes: ['log', 'launch', 'read'] };
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

/** Writes from trainers and workers: an API key with the `log` scope is required. */
export const logProcedure = teamProcedure.use(async ({ ctx, next }) => {
  if (ctx.actor.via !== 'key') {
    throw new TRPCError({
      code: 'UNAUTHORIZED',
      message: 'logging needs an API key: send it as `x-api-key: <key>` or `Authorization: Bearer <key>`',
    });
  }
  if (!ctx.actor.scopes.includes('log')) {
    throw new TRPCError({ code: 'FORBIDDEN', message: 'this API key lacks the `log` scope' });
  }
  return next();
});
