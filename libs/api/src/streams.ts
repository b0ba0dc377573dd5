/**
 * Long-lived streams (tRPC SSE subscriptions) must not outlive the access they were opened with: a revoked key, a
 * member removed from the team or a signed-out session ends them within seconds. Each stream also has a maximum
 * lifetime, after which it ends with a retryable error: tRPC's SSE client (the browser's EventSource) reconnects on
 * its own, sending the last event id, so nothing is missed and the new connection is authorized afresh.
 */
import { TRPCError } from '@trpc/server';
import { resolveActor, type Actor, type Context, type Permission } from './trpc';

export interface StreamLimits {
  /** How often an open stream re-checks its caller's access while nothing is written (default 5 s). */
  recheckMs?: number;
  /** How long one stream may stay open before the client must reconnect (default 15 min). */
  maxLifetimeMs?: number;
}

export const STREAM_DEFAULTS: Required<StreamLimits> = { recheckMs: 5_000, maxLifetimeMs: 15 * 60_000 };

/** Throws (401 or 403) unless the caller still holds `scope` in the team the stream was opened for. */
export async function recheckAccess(ctx: Context, opened: Actor, scope: Permission): Promise<void> {
  let userId = ctx.userId ?? null;
  if (userId && ctx.revalidateSession) {
    // the session row is looked up again: a signed-out or expired session no longer names the user
    userId = await ctx.revalidateSession();
    if (!userId) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'your session has ended: sign in again' });
  }
  const now = await resolveActor({ ...ctx, userId });
  // a removed member resolves to another of their teams (or none): either way not the team this stream reads
  if (now.teamId !== opened.teamId) {
    throw new TRPCError({ code: 'FORBIDDEN', message: 'you are no longer a member of the team this stream reads' });
  }
  if (!now.scopes.includes(scope)) {
    throw new TRPCError({ code: 'FORBIDDEN', message: `the \`${scope}\` permission this stream needs was withdrawn` });
  }
}

/**
 * The access guard of one stream. Call `check(true)` after reading what is about to be sent and before sending it,
 * so nothing read after a revocation is delivered; `check(false)` between writes re-checks every `recheckMs`.
 */
export function streamGuard(ctx: Context & { actor: Actor }, scope: Permission) {
  const { recheckMs, maxLifetimeMs } = { ...STREAM_DEFAULTS, ...ctx.streams };
  const endsAt = Date.now() + maxLifetimeMs;
  let checkedAt = Date.now();
  return {
    /** How long to wait for the next write: never past the next re-check or the end of the stream's lifetime. */
    waitMs(ms: number): number {
      return Math.max(0, Math.min(ms, checkedAt + recheckMs - Date.now(), endsAt - Date.now()));
    },
    async check(beforeSending: boolean): Promise<void> {
      if (Date.now() >= endsAt) {
        throw new TRPCError({
          // retryable: the client reconnects with the last event id it saw
          code: 'SERVICE_UNAVAILABLE',
          message: `this stream reached its limit of ${Math.round(maxLifetimeMs / 1000)} s; reconnect to continue`,
        });
      }
      if (!beforeSending && Date.now() - checkedAt < recheckMs) return;
      await recheckAccess(ctx, ctx.actor, scope);
      checkedAt = Date.now();
    },
  };
}
