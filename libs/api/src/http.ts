import { fetchRequestHandler } from '@trpc/server/adapters/fetch';
import type { Db, RunNotifier } from '@aft/db';
import type { JobProducer } from '@aft/queue';
import type { RateLimiter } from './rate-limit';
import { LIMITS } from '@aft/contracts';
import { parsePythonJson, PythonJsonError } from './mlflow/python-json';
import { crossSiteRefusal } from './same-origin';
import { BodyTooLargeError, withBodyLimit } from './body';
import { appRouter } from './root';
import { sessionUser, type Auth } from './auth';
import { apiKeyFromHeaders, createContextInner, RateLimitedError } from './trpc';
import { clientIp } from './client-ip';
import type { StreamLimits } from './streams';
import type { ArtifactFiles } from './artifact-files';

export interface ApiHandlerOptions {
  db: Db;
  notifier: RunNotifier;
  /** Sign-in sessions; null = API keys only. */
  auth: Auth | null;
  jobs?: JobProducer | null;
  rateLimiter?: RateLimiter | null;
  /** Where the router is mounted. */
  endpoint?: string;
  /** The MLflow API's artifact directory or store (../artifact-files.ts): a deleted run's uploaded files go with it. */
  artifactDir?: ArtifactFiles | null;
  /** Queued plus running runs a team may have at once (AFT_TEAM_MAX_ACTIVE_RUNS); default in libs/db. */
  maxActiveRuns?: number;
  /** Largest request body accepted, in bytes (a full 10,000-point batch is about 0.7 MB). */
  maxBodyBytes?: number;
  /** How often live streams re-check access and how long each may stay open (AFT_STREAM_MAX_S). */
  streams?: StreamLimits;
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
  opts: Pick<
    ApiHandlerOptions,
    'db' | 'notifier' | 'auth' | 'jobs' | 'rateLimiter' | 'maxActiveRuns' | 'streams' | 'artifactDir'
  >,
  headers: Headers,
) {
  const apiKey = apiKeyFromHeaders(headers);
  const auth = opts.auth;
  const user = !apiKey && auth ? await sessionUser(auth, headers) : null;
  return createContextInner({
    db: opts.db,
    notifier: opts.notifier,
    jobs: opts.jobs ?? null,
    rateLimiter: opts.rateLimiter ?? null,
    artifactDir: opts.artifactDir ?? null,
    maxActiveRuns: opts.maxActiveRuns,
    apiKey,
    userId: user?.id ?? null,
    revalidateSession: user && auth ? async () => (await sessionUser(auth, headers))?.id ?? null : null,
    streams: opts.streams,
    team: headers.get('x-aft-team') ?? cookieValue(headers, TEAM_COOKIE),
    ip: clientIp(headers),
  });
}

/**
 * Requests refused before anything is read. A POST must say it is JSON: tRPC's adapter would also take a form or
 * octet-stream body, which a foreign page can POST without asking first. A request with the session cookie (and no
 * key) must come from this site's own pages (same-origin.ts), as on the MLflow and export routes.
 */
function requestRefusal(req: Request): { status: number; code: string; message: string } | null {
  if (req.method === 'POST' && !/^application\/json\s*(;|$)/i.test(req.headers.get('content-type') ?? '')) {
    return {
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
      message: 'content-type: a POST to the API sends application/json',
    };
  }
  if (!apiKeyFromHeaders(req.headers) && req.headers.get('cookie')) {
    const why = crossSiteRefusal(req.headers, req.url, req.method !== 'GET');
    if (why) return { status: 403, code: 'FORBIDDEN', message: why };
  }
  return null;
}

/**
 * What a body's structure is bounded by before tRPC parses it. JSON.parse holds the event loop for seconds on 8 MB
 * of `{},{},…` or `[[[[…`, within the byte limit; the largest real request (a 10,000-point batch as objects, a
 * 1,000-sample batch) has about 100,000 commas, colons and brackets and nests a few levels. Deeper than 64 is
 * refused by the schemas (naming the field); past 256 by this check, before JSON.parse.
 */
const TRPC_BODY_SHAPE = { structure: 500_000, depth: 256, nonFinite: Number.MAX_SAFE_INTEGER, checkOnly: true };

/** Why `req`'s body is refused before parsing (too much structure, too deep), or null; the walk is linear. */
async function shapeProblem(req: Request): Promise<string | null> {
  if (!req.body) return null;
  try {
    await parsePythonJson(await req.clone().text(), TRPC_BODY_SHAPE);
    return null;
  } catch (e) {
    if (e instanceof PythonJsonError) return e.message;
    throw e;
  }
}

/** The tRPC API as a fetch handler (Request → Response): mounted by the Next route, called directly in tests. */
export function createApiHandler(opts: ApiHandlerOptions) {
  const maxBody = opts.maxBodyBytes ?? 8 * 1024 * 1024;
  const endpoint = opts.endpoint ?? '/api/trpc';
  return async (original: Request): Promise<Response> => {
    // counted before any call runs: each call of a batch may read up to the per-call limits
    const url = new URL(original.url);
    if (url.searchParams.get('batch') === '1') {
      // tRPC decodes the path before it splits it: `%2C` separates calls as a comma does
      let path: string;
      try {
        path = decodeURIComponent(url.pathname.slice(endpoint.length));
      } catch {
        await original.body?.cancel().catch(() => undefined);
        return jsonError(400, 'BAD_REQUEST', 'the procedure path has a malformed % escape');
      }
      const calls = path.split(',').length;
      if (calls > LIMITS.batchCalls) {
        await original.body?.cancel().catch(() => undefined);
        return jsonError(
          413,
          'PAYLOAD_TOO_LARGE',
          `the batch has ${calls} calls; one request carries at most ${LIMITS.batchCalls}`,
        );
      }
    }
    const refused = requestRefusal(original);
    if (refused) {
      await original.body?.cancel().catch(() => undefined);
      return jsonError(refused.status, refused.code, refused.message);
    }
    let req: Request;
    try {
      req = await withBodyLimit(original, maxBody);
      const shape = await shapeProblem(req);
      if (shape) return jsonError(413, 'PAYLOAD_TOO_LARGE', shape);
    } catch (e) {
      if (e instanceof BodyTooLargeError) return jsonError(413, 'PAYLOAD_TOO_LARGE', e.message);
      throw e;
    }
    return fetchRequestHandler({
      endpoint,
      req,
      router: appRouter,
      maxBatchSize: LIMITS.batchCalls,
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
