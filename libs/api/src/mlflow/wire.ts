/**
 * What every MLflow endpoint shares: the options and limits, MLflow's error shape, JSON responses, the request
 * context, and the input schemas (MLflow sends numbers as JSON numbers, int64 may be strings, and GET parameters
 * are strings).
 */
import { z, ZodError } from 'zod';
import { findUnstorable } from '@aft/contracts';
import type { Db } from '@aft/db';
import type { ArtifactFiles } from '../artifact-files';
import type { ApiHandlerOptions } from '../http';
import type { Actor, Permission } from '../trpc';

export interface MlflowOptions extends Pick<ApiHandlerOptions, 'db' | 'notifier' | 'auth' | 'rateLimiter' | 'jobs'> {
  /** Where uploaded artifacts are kept (one folder per run): a directory, or the artifact store (../artifact-files.ts). */
  artifactDir: ArtifactFiles;
  /** Largest artifact upload, in bytes (default 16 MiB): this is for small files — configs, plots, reports. */
  maxArtifactBytes?: number;
  /** Bytes of uploaded artifacts a team may keep in all (default 10 GiB); deleting runs frees theirs. */
  teamStorageBytes?: number;
  /**
   * A team's artifact uploads in flight at once in this process (default 4; more are a 429 with Retry-After), and
   * the longest an upload waits for the team's storage lock (default 5000 ms; then a 503).
   */
  artifactUploads?: { perTeam?: number; lockTimeoutMs?: number };
  /** Largest JSON request body (default 8 MiB). */
  maxBodyBytes?: number;
}

/** MLflow's limits (mlflow/utils/validation.py). */
export const MLFLOW_LIMITS = {
  metricsPerBatch: 1000,
  paramsPerBatch: 100,
  tagsPerBatch: 100,
  entitiesPerBatch: 1000,
  keyLength: 250,
  paramValueLength: 6000,
  tagValueLength: 8000,
  searchMaxResults: 50_000,
  historyMaxResults: 25_000,
} as const;

export class MlflowError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number = code === 'RESOURCE_DOES_NOT_EXIST' || code === 'ENDPOINT_NOT_FOUND' ? 404 : 400,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const bad = (message: string) => new MlflowError('INVALID_PARAMETER_VALUE', message);
export const runNotFound = (id: string) => new MlflowError('RESOURCE_DOES_NOT_EXIST', `Run with id=${id} not found`);

/** A JSON response; non-finite numbers are written as MLflow does, as the strings "NaN", "Infinity", "-Infinity". */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(
    JSON.stringify(body, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)),
    {
      status,
      headers: { 'content-type': 'application/json', ...headers },
    },
  );
}

export function errorResponse(e: MlflowError): Response {
  return json({ error_code: e.code, message: e.message }, e.status, e.headers);
}

/** What an endpoint is handed: the data access, who is asking (and from where), and the handler's options. */
export interface Ctx {
  db: Db;
  actor: Actor;
  ip: string | null;
  opts: MlflowOptions;
}

/** An endpoint: the request's parameters (query string or JSON body) in, the response's JSON out. */
export type Endpoint = (ctx: Ctx, input: Record<string, unknown>) => Promise<unknown>;

export function need(ctx: Ctx, p: Permission) {
  if (!ctx.actor.scopes.includes(p)) {
    throw new MlflowError(
      'PERMISSION_DENIED',
      ctx.actor.via === 'key'
        ? `this API key lacks the \`${p}\` scope`
        : `your role in this team is ${ctx.actor.role}; this needs the \`${p}\` permission`,
      403,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Input schemas

const int64 = z
  .union([
    z.number(),
    z
      .string()
      .regex(/^-?\d+$/, 'must be an integer')
      .transform(Number),
  ])
  .pipe(z.number().int('must be an integer'));
/** Milliseconds since the epoch that Postgres and JS dates both hold: years 1 to 9999 (1e20 is neither). */
const MS_RANGE = [-62_135_596_800_000, 253_402_300_799_999] as const; // 0001-01-01, 9999-12-31T23:59:59.999Z
export const epochMs = (what: string) =>
  int64.refine(
    (t) => t >= MS_RANGE[0] && t <= MS_RANGE[1],
    `${what} is milliseconds since the epoch, between year 1 and year 9999`,
  );
const double = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity']).transform(Number)], {
  message: 'a metric value is a number (or "NaN", "Infinity", "-Infinity")',
});
export const name = (what: string) =>
  z
    .string({ message: `${what} is required` })
    .min(1, `${what} must not be empty`)
    .max(MLFLOW_LIMITS.keyLength, `${what} is at most ${MLFLOW_LIMITS.keyLength} characters`)
    .regex(
      /^[\w\-./ :]+$/u,
      `${what} may hold alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colons (:) and slashes (/)`,
    );
export const runId = z.object({
  run_id: z.string().min(1).max(64).optional(),
  run_uuid: z.string().min(1).max(64).optional(),
});
export const tag = z.object({
  key: name('tag key'),
  value: z
    .string()
    .max(MLFLOW_LIMITS.tagValueLength, `a tag value is at most ${MLFLOW_LIMITS.tagValueLength} characters`)
    .default(''),
});
export const param = z.object({
  key: name('param key'),
  value: z
    .string({ message: 'a param value is a string' })
    .max(MLFLOW_LIMITS.paramValueLength, `a param value is at most ${MLFLOW_LIMITS.paramValueLength} characters`),
});
export const metric = z.object({
  key: name('metric key'),
  value: double,
  timestamp: epochMs('timestamp').optional(),
  step: int64.default(0).refine((s) => s >= -(2 ** 31) && s < 2 ** 31, 'step must fit in 32 bits'),
});
export const pageToken = z.string().max(200).optional();
export const maxResults = (max: number, dflt: number) =>
  z.coerce
    .number()
    .int()
    .min(1, 'max_results must be at least 1')
    .max(max, `max_results is at most ${max}`)
    .default(dflt);
/** One value or a list of at most `max` (each entry costs a query or a compile: a body could carry thousands). */
export const list = <T extends z.ZodTypeAny>(t: T, max: number) =>
  z.union([z.array(t).max(max, `at most ${max} entries`), t.transform((v) => [v])]);

export function runIdOf(i: { run_id?: string | undefined; run_uuid?: string | undefined }): string {
  const id = i.run_id ?? i.run_uuid;
  if (!id) throw bad("Missing value for required parameter 'run_id'.");
  return id;
}

export function parse<T extends z.ZodTypeAny>(schema: T, input: unknown): z.infer<T> {
  // NUL and lone surrogates are refused by Postgres (a 500 there): every MLflow input string is checked here first
  const unstorable = findUnstorable(input);
  if (unstorable) throw bad(`Invalid request: ${unstorable.path.join('.') || 'request'} ${unstorable.message}`);
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issues = (r.error as ZodError).issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : 'request'}: ${i.message}`);
  throw bad(`Invalid request: ${issues.join('; ')}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Paging: a page token is base64url of the offset of the next page.

export function pageOffset(token: string | undefined): number {
  if (!token) return 0;
  // our tokens are base64url of a plain offset; anything else (1e20, -1, junk) would reach OFFSET and fail there
  const s = Buffer.from(token, 'base64url').toString('utf8');
  if (!/^\d{1,12}$/.test(s)) throw bad('Invalid page_token: pass the next_page_token of the previous page');
  return Number(s);
}

/** `{ next_page_token }` when a page asked with `limit + 1` rows got more than `limit`, else nothing. */
export const nextPage = (offset: number, got: number, limit: number) =>
  got > limit ? { next_page_token: Buffer.from(String(offset + limit)).toString('base64url') } : {};
