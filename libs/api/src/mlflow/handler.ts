/**
 * An MLflow-compatible tracking API, so that scripts already logging through MLflow (Transformers/TRL
 * `report_to="mlflow"`, Lightning's MLFlowLogger, `mlflow.log_metric`) log into AFT Lab by pointing
 * MLFLOW_TRACKING_URI here and setting MLFLOW_TRACKING_TOKEN to an API key.
 *
 *   /api/2.0/mlflow/…  and its twin /ajax-api/2.0/mlflow/…   experiments, runs, metrics, artifacts (MLflow's shapes)
 *   /api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts/<path>   PUT uploads, GET downloads (small files)
 *
 * This file is the route table and the request pipeline (decoding, authentication, MLflow's errors with its HTTP
 * statuses: `{"error_code": "...", "message": "..."}`); each resource has its module (experiments, runs, run-data,
 * search, artifacts) and every statement is a named function of libs/db/src/mlflow (docs/architecture.md, "Layers").
 */
import { TRPCError } from '@trpc/server';
import { isStatementTimeout, MetricKeyCapError, RunNotFoundError } from '@aft/db';
import { BodyTooLargeError, readBodyText } from '../body';
import { requestContext } from '../http';
import { crossSiteRefusal } from '../same-origin';
import { resolveActor, type Actor, type Permission } from '../trpc';
import * as artifacts from './artifacts';
import * as experiments from './experiments';
import { parsePythonJson, PythonJsonError } from './python-json';
import * as runData from './run-data';
import * as runs from './runs';
import * as search from './search';
import {
  errorResponse,
  json,
  MLFLOW_LIMITS,
  MlflowError,
  need,
  runNotFound,
  type Ctx,
  type Endpoint,
  type MlflowOptions,
} from './wire';

export { MLFLOW_LIMITS, type MlflowOptions } from './wire';

/** MLflow's REST paths (after /api/2.0/mlflow/): the permission each needs and its endpoint. */
const ROUTES: Record<string, [Permission, Endpoint]> = {
  'experiments/create': ['log', experiments.create],
  'experiments/get': ['read', experiments.get],
  'experiments/get-by-name': ['read', experiments.getByName],
  'experiments/search': ['read', search.experiments],
  'experiments/list': ['read', search.listExperiments],
  'runs/create': ['log', runs.create],
  'runs/get': ['read', runs.get],
  'runs/update': ['log', runs.update],
  'runs/delete': ['launch', runs.remove],
  'runs/search': ['read', search.runs],
  'runs/log-metric': ['log', runData.logMetric],
  'runs/log-parameter': ['log', runData.logParameter],
  'runs/set-tag': ['log', runData.setTag],
  'runs/delete-tag': ['log', runData.deleteTag],
  'runs/log-batch': ['log', runData.logBatch],
  'metrics/get-history': ['read', runData.getHistory],
  'artifacts/list': ['read', artifacts.list],
};

const API = /^\/(?:ajax-)?api\/2\.0\/mlflow\/(.+?)\/?$/;
const ARTIFACTS = /^\/(?:ajax-)?api\/2\.0\/mlflow-artifacts\/artifacts(?:\/(.*))?$/;

/**
 * The most a request body may hold, far above what any MLflow request does (a full log-batch: 1000 metrics of four
 * fields, about 6,000 commas and brackets, nesting 3 deep): beyond it, parsing alone would hold the event loop.
 */
const BODY_SHAPE = { nonFinite: MLFLOW_LIMITS.metricsPerBatch, structure: 100_000, depth: 32 };

/** The searches, which MLflow's REST API takes as POST (and GET); its other reads are GET. */
const SEARCHES = new Set(['experiments/search', 'runs/search']);
/** Trainer logging: as tRPC's logProcedure, only with an API key, never with the session cookie. */
const KEY_ONLY = new Set(['runs/log-metric', 'runs/log-parameter', 'runs/log-batch']);

/** The methods MLflow defines for an endpoint: writes are POST only, so a link or an <img> cannot make one. */
const methodsOf = (path: string, permission: Permission): string[] =>
  permission !== 'read' ? ['POST'] : SEARCHES.has(path) ? ['GET', 'POST'] : ['GET'];

/** What a write is charged to the key's rate: the metrics, params and tags it holds (at least one unit). */
const writeUnits = (input: Record<string, unknown>) =>
  ['metrics', 'params', 'tags'].reduce((n, k) => n + (Array.isArray(input[k]) ? (input[k] as unknown[]).length : 0), 0);

/**
 * Charges a write to the key's ingestion rate (as tRPC's chargeRate does), before anything is written: a batch by
 * what it holds, any other write as one unit, so a key cannot flood tags or params either. Fails open like it.
 */
async function chargeWrite(ctx: Ctx, units: number) {
  if (!ctx.opts.rateLimiter || !ctx.actor.keyId) return;
  const r = await ctx.opts.rateLimiter.take(ctx.actor.keyId, Math.max(1, units)).catch(() => ({ ok: true as const }));
  if (!r.ok) {
    throw new MlflowError(
      'REQUEST_LIMIT_EXCEEDED',
      `this API key is over its ingestion rate; retry after ${r.retryAfterS} s`,
      429,
      { 'retry-after': String(r.retryAfterS) },
    );
  }
}

/** The request's identity as an actor, with tRPC's refusals in MLflow's words. */
async function actorOf(base: Awaited<ReturnType<typeof requestContext>>): Promise<Actor> {
  try {
    return await resolveActor(base);
  } catch (e) {
    if (e instanceof TRPCError) {
      const unauth = e.code === 'UNAUTHORIZED';
      throw new MlflowError(
        unauth ? 'UNAUTHENTICATED' : 'PERMISSION_DENIED',
        unauth ? `${e.message}. MLflow clients: set MLFLOW_TRACKING_TOKEN to an AFT Lab API key` : e.message,
        unauth ? 401 : 403,
      );
    }
    throw e;
  }
}

/** An endpoint's input: as in MLflow, a GET reads its query string and a POST its JSON body only. */
async function inputOf(req: Request, url: URL, method: string, maxBody: number): Promise<Record<string, unknown>> {
  const input: Record<string, unknown> = {};
  for (const [k, v] of method === 'GET' ? url.searchParams : []) {
    // repeated GET parameters (experiment_ids=1&experiment_ids=2) become lists
    input[k] = k in input ? ([] as unknown[]).concat(input[k], v) : v;
  }
  if (method !== 'POST') return input;
  let text: string;
  try {
    text = await readBodyText(req, maxBody);
  } catch (e) {
    if (e instanceof BodyTooLargeError) throw new MlflowError('INVALID_PARAMETER_VALUE', e.message, 413);
    throw e;
  }
  if (!text.trim()) return input;
  let body: unknown;
  try {
    // Python's json module writes NaN and Infinity bare; read them as MLflow's server does
    body = await parsePythonJson(text, BODY_SHAPE);
  } catch (e) {
    if (e instanceof PythonJsonError) throw new MlflowError('MALFORMED_REQUEST', e.message);
    throw e;
  }
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw new MlflowError('MALFORMED_REQUEST', 'request body must be a JSON object');
  return { ...input, ...(body as Record<string, unknown>) };
}

/** Anything an endpoint threw, as MLflow's error shape; what is not the client's doing is logged and a 500. */
function failure(e: unknown, pathname: string): Response {
  if (e instanceof MlflowError) return errorResponse(e);
  if (e instanceof RunNotFoundError) return errorResponse(runNotFound(e.runId));
  if (e instanceof MetricKeyCapError) return json({ error_code: 'INVALID_PARAMETER_VALUE', message: e.message }, 400);
  if (isStatementTimeout(e)) {
    return json(
      {
        error_code: 'TEMPORARILY_UNAVAILABLE',
        message: 'the database query took too long and was stopped; retry, or ask for less',
      },
      503,
    );
  }
  console.error('[mlflow]', pathname, e);
  return json({ error_code: 'INTERNAL_ERROR', message: 'internal error' }, 500);
}

/** The MLflow API as a fetch handler (Request → Response), mounted by the web app's routes. */
export function createMlflowHandler(opts: MlflowOptions) {
  const maxBody = opts.maxBodyBytes ?? 8 * 1024 * 1024;
  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    try {
      const api = API.exec(url.pathname);
      const art = ARTIFACTS.exec(url.pathname);
      const getArtifact = url.pathname === '/get-artifact';
      const route = api ? ROUTES[api[1]!] : undefined;
      if (!route && !art && !getArtifact) {
        throw new MlflowError(
          'ENDPOINT_NOT_FOUND',
          `No API endpoint for ${req.method} ${url.pathname}: this server implements ${Object.keys(ROUTES).join(', ')}`,
          404,
        );
      }
      const method = req.method === 'HEAD' ? 'GET' : req.method; // Next answers HEAD with the GET handler
      const allowed = route ? methodsOf(api![1]!, route[0]) : art ? ['GET', 'PUT'] : ['GET'];
      if (!allowed.includes(method)) {
        throw new MlflowError(
          'ENDPOINT_NOT_FOUND',
          `${req.method} is not allowed on ${url.pathname}: use ${allowed.join(' or ')}, as MLflow's REST API does`,
          405,
          { allow: allowed.join(', ') },
        );
      }
      if (route && method === 'POST') {
        // a form or a no-cors fetch from another site can only send text/plain, form or multipart bodies
        const type = (req.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
        if (type !== 'application/json')
          throw new MlflowError(
            'INVALID_PARAMETER_VALUE',
            `Content-Type must be application/json for POST requests (got ${type ? `'${type}'` : 'none'})`,
            415,
          );
      }
      const base = await requestContext(opts, req.headers);
      if (!base.apiKey && base.userId) {
        // a browser sends the session cookie with any request a foreign page makes: only ours may use it here
        const refusal = crossSiteRefusal(req.headers, req.url, method !== 'GET');
        if (refusal) throw new MlflowError('PERMISSION_DENIED', refusal, 403);
      }
      const actor = await actorOf(base);
      const ctx: Ctx = { db: opts.db, actor, ip: base.ip ?? null, opts };
      if (actor.via === 'user' && ((api && KEY_ONLY.has(api[1]!)) || (art && method === 'PUT'))) {
        throw new MlflowError(
          'PERMISSION_DENIED',
          'logging needs an API key, not a signed-in session: MLflow clients set MLFLOW_TRACKING_TOKEN to an AFT Lab API key',
          403,
        );
      }
      if (art && method === 'PUT') {
        // an upload is a write like any other: charged to the key's rate before its body is read
        need(ctx, 'log');
        await chargeWrite(ctx, 1);
      }
      if (art) return await artifacts.proxyRequest(ctx, req, art[1] ?? '');
      if (getArtifact) return await artifacts.getArtifact(ctx, url);
      const [permission, endpoint] = route!;
      const input = await inputOf(req, url, method, maxBody);
      need(ctx, permission);
      if (permission !== 'read') await chargeWrite(ctx, writeUnits(input));
      return json(await endpoint(ctx, input));
    } catch (e) {
      return failure(e, url.pathname);
    }
  };
}
