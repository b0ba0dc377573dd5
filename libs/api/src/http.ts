import { fetchRequestHandler } from '@trpc/server/adapters/fetch';
import type { Db, RunNotifier } from '@aft/db';
import type { JobProducer } from '@aft/queue';
import type { RateLimiter } from './rate-limit';
import { appRouter } from './root';
import { apiKeyFromHeaders, createContextInner, RateLimitedError } from './trpc';

export interface ApiHandlerOptions {
  db: Db;
  notifier: RunNotifier;
  localTeam: string | null;
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
      createContext: () =>
        createContextInner({
          db: opts.db,
          notifier: opts.notifier,
          localTeam: opts.localTeam,
          jobs: opts.jobs ?? null,
          rateLimiter: opts.rateLimiter ?? null,
          apiKey: apiKeyFromHeaders(req.headers),
        }),
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
