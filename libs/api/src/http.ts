import { fetchRequestHandler } from '@trpc/server/adapters/fetch';
import type { Db, RunNotifier } from '@aft/db';
import type { JobProducer } from '@aft/queue';
import type { RateLimiter } from './rate-limit';
import { appRouter } from './root';
import { sessionUser, type Auth } from './auth';
import { apiKeyFromHeaders, createContextInner, RateLimitedError } from './trpc';

export interface ApiHandlerOptions {
  db: Db;
  notifier: RunNotifier;
  /** Sign-in sessions; null = API keys only. */
  auth: Auth | null;
  jobs?: JobProducer | null;
  rateLimiter?: RateLimiter | null;
  /** Where the router is mounted. */
  endpoint?: string;
  /** Largest request body accepted, in bytes (a full 10,000-point batch is about 0.7 MB). */
  maxBodyBytes?: number;
}

function jsonError(status: number, code: string, message: string): Response {
  return new Response(JSON.stringify({ error: { message, code: -32600, data: { code, httpStatus: status } } }), {
    status,
    headers: { 'content-type': 'application/json' },
  });
}

/** A cookie's value from a Cookie header. */
export function cookieValue(headers: Headers, name: string): string | null {
  for (const part of (headers.get('cookie') ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) {
      try {
        return decodeURIComponent(part.slice(i + 1).trim());
      } catch {
        return null;
      }
    }
  }
  return null;
}

/** The cookie that holds the team a signed-in user is working in. */
export const TEAM_COOKIE = 'aft_team';

/** Who is calling: an API key if one was sent, else the session cookie's user and the team they work in. */
export async function requestContext(
  opts: Pick<ApiHandlerOptions, 'db' | 'notifier' | 'auth' | 'jobs' | 'rateLimiter'>,
  headers: Headers,
) {
  const apiKey = apiKeyFromHeaders(headers);
  const user = !apiKey && opts.auth ? await sessionUser(opts.auth, headers) : null;
  return createContextInner({
    db: opts.db,
    notifier: opts.notifier,
    jobs: opts.jobs ?? null,
    rateLimiter: opts.rateLimiter ?? null,
    apiKey,
    userId: user?.id ?? null,
    team: headers.get('x-aft-team') ?? cookieValue(headers, TEAM_COOKIE),
    ip: headers.get('x-forwarded-for')?.split(',')[0]?.trim() ?? headers.get('x-real-ip') ?? null,
  });
}

/** The tRPC API as a fetch handler (Request → Response): mounted by the Next route, called directly in tests. */
export function createApiHandler(opts: ApiHandlerOptions) {
  const maxBody = opts.maxBodyBytes ?? 8 * 1024 * 1024;
  return async (req: Request): Promise<Response> => {
    const len = Number(req.headers.get('content-length') ?? '0');
    if (len > maxBody) {
      return jsonError(413, 'PAYLOAD_TOO_LARGE', `request body is ${len} bytes; the limit is ${maxBody} bytes`);
    }
    return fetchRequestHandler({
      endpoint: opts.endpoint ?? '/api/trpc',
      req,
      router: appRouter,
      createContext: () => requestContext(opts, req.headers),
      responseMeta({ errors }) {
        const limited = errors.map((e) => e.cause).find((c): c is RateLimitedError => c instanceof RateLimitedError);
        return limited ? { headers: new Headers({ 'retry-after': String(limited.retryAfterS) }) } : {};
      },
      onError({ error, path }) {
        if (error.code === 'INTERNAL_SERVER_ERROR') console.error(`[api] ${path ?? '?'}:`, error.cause ?? error);
      },
    });
  };
}
