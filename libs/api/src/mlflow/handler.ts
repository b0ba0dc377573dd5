/**
 * An MLflow-compatible tracking API, so that scripts already logging through MLflow (Transformers/TRL
 * `report_to="mlflow"`, Lightning's MLFlowLogger, `mlflow.log_metric`) log into AFT Lab by pointing
 * MLFLOW_TRACKING_URI here and setting MLFLOW_TRACKING_TOKEN to an API key.
 *
 *   /api/2.0/mlflow/…  and its twin /ajax-api/2.0/mlflow/…   experiments, runs, metrics, artifacts (MLflow's shapes)
 *   /api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts/<path>   PUT uploads, GET downloads (small files)
 *
 * Mapping: an experiment is a project of the key's team (experiment "0" is the project "Default"); a run is a run,
 * its `method` from the tag `aft.method` (else `external`) and `constraint` from `aft.constraint`; params are config
 * entries (immutable once logged, as in MLflow); metrics are metric points with their timestamps; tags are the run's
 * key-value tags. Errors are MLflow's: `{"error_code": "...", "message": "..."}` with its HTTP statuses.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { TRPCError } from '@trpc/server';
import { z, ZodError } from 'zod';
import { findUnstorable } from '@aft/contracts';
import {
  artifactPathClash,
  deleteRun,
  insertMetricPoints,
  isStatementTimeout,
  lockTeamStorage,
  MetricKeyCapError,
  revokeRunTokens,
  RUN_CHANNEL,
  RunNotFoundError,
  teamArtifactBytes,
  withTransaction,
  type Db,
} from '@aft/db';
import { downloadHeaders, removeRunArtifactFiles } from '../artifact-files';
import { audit } from '../audit';
import { BodyTooLargeError, readBody, readBodyText } from '../body';
import { requestContext, type ApiHandlerOptions } from '../http';
import { configHash } from '../router/runs';
import { crossSiteRefusal } from '../same-origin';
import { resolveActor, type Actor, type Permission } from '../trpc';
import { compileOrderBy, compileRunFilter, FilterError } from './filter';
import { parsePythonJson, PythonJsonError } from './python-json';

export interface MlflowOptions extends Pick<ApiHandlerOptions, 'db' | 'notifier' | 'auth' | 'rateLimiter'> {
  /** Where uploaded artifacts are kept (one folder per run). */
  artifactDir: string;
  /** Largest artifact upload, in bytes (default 16 MiB): this is for small files — configs, plots, reports. */
  maxArtifactBytes?: number;
  /** Bytes of uploaded artifacts a team may keep in all (default 10 GiB); deleting runs frees theirs. */
  teamStorageBytes?: number;
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

const STATUS: Record<string, string> = {
  running: 'RUNNING',
  queued: 'SCHEDULED',
  succeeded: 'FINISHED',
  failed: 'FAILED',
  canceled: 'KILLED',
};
const FROM_STATUS: Record<string, string> = {
  RUNNING: 'running',
  SCHEDULED: 'queued',
  FINISHED: 'succeeded',
  FAILED: 'failed',
  KILLED: 'canceled',
};

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

const bad = (message: string) => new MlflowError('INVALID_PARAMETER_VALUE', message);
const runNotFound = (id: string) => new MlflowError('RESOURCE_DOES_NOT_EXIST', `Run with id=${id} not found`);

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(
    JSON.stringify(body, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)),
    {
      status,
      headers: { 'content-type': 'application/json', ...headers },
    },
  );
}

function errorResponse(e: MlflowError): Response {
  return json({ error_code: e.code, message: e.message }, e.status, e.headers);
}

// ---------------------------------------------------------------------------------------------------------------
// Input schemas: MLflow sends numbers as JSON numbers (int64 may be strings) and GET parameters as strings.

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
const epochMs = (what: string) =>
  int64.refine(
    (t) => t >= MS_RANGE[0] && t <= MS_RANGE[1],
    `${what} is milliseconds since the epoch, between year 1 and year 9999`,
  );
const double = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity']).transform(Number)], {
  message: 'a metric value is a number (or "NaN", "Infinity", "-Infinity")',
});
const name = (what: string) =>
  z
    .string({ message: `${what} is required` })
    .min(1, `${what} must not be empty`)
    .max(MLFLOW_LIMITS.keyLength, `${what} is at most ${MLFLOW_LIMITS.keyLength} characters`)
    .regex(
      /^[\w\-./ :]+$/u,
      `${what} may hold alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colons (:) and slashes (/)`,
    );
const runId = z.object({
  run_id: z.string().min(1).max(64).optional(),
  run_uuid: z.string().min(1).max(64).optional(),
});
const tag = z.object({
  key: name('tag key'),
  value: z
    .string()
    .max(MLFLOW_LIMITS.tagValueLength, `a tag value is at most ${MLFLOW_LIMITS.tagValueLength} characters`)
    .default(''),
});
const param = z.object({
  key: name('param key'),
  value: z
    .string({ message: 'a param value is a string' })
    .max(MLFLOW_LIMITS.paramValueLength, `a param value is at most ${MLFLOW_LIMITS.paramValueLength} characters`),
});
const metric = z.object({
  key: name('metric key'),
  value: double,
  timestamp: epochMs('timestamp').optional(),
  step: int64.default(0).refine((s) => s >= -(2 ** 31) && s < 2 ** 31, 'step must fit in 32 bits'),
});
const pageToken = z.string().max(200).optional();
const maxResults = (max: number, dflt: number) =>
  z.coerce
    .number()
    .int()
    .min(1, 'max_results must be at least 1')
    .max(max, `max_results is at most ${max}`)
    .default(dflt);
/** One value or a list of at most `max` (each entry costs a query or a compile: a body could carry thousands). */
const list = <T extends z.ZodTypeAny>(t: T, max: number) =>
  z.union([z.array(t).max(max, `at most ${max} entries`), t.transform((v) => [v])]);

function runIdOf(i: { run_id?: string | undefined; run_uuid?: string | undefined }): string {
  const id = i.run_id ?? i.run_uuid;
  if (!id) throw bad("Missing value for required parameter 'run_id'.");
  return id;
}

function parse<T extends z.ZodTypeAny>(schema: T, input: unknown): z.infer<T> {
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

interface Ctx {
  db: Db;
  actor: Actor;
  ip: string | null;
  opts: MlflowOptions;
}

function need(ctx: Ctx, p: Permission) {
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

interface ProjectRow {
  id: string;
  name: string;
  description: string;
  created_at: Date;
  updated: Date | null;
}

function experimentJson(p: ProjectRow) {
  return {
    experiment_id: p.id,
    name: p.name,
    artifact_location: `mlflow-artifacts:/${p.id}`,
    lifecycle_stage: 'active',
    creation_time: p.created_at.getTime(),
    last_update_time: (p.updated ?? p.created_at).getTime(),
    tags: p.description ? [{ key: 'mlflow.note.content', value: p.description }] : [],
  };
}

const PROJECT_COLS = `p.id, p.name, p.description, p.created_at, (SELECT max(r.updated_at) FROM run r WHERE r.project_id = p.id) AS updated`;

/** A project of the team by id; experiment "0" is the team's "Default" project, made when first used. */
async function experiment(ctx: Ctx, id: string, create = false): Promise<ProjectRow> {
  if (id === '0') {
    if (create) {
      await ctx.db.pool.query(
        `INSERT INTO project (id, team_id, name, description) VALUES ($1, $2, 'Default', 'MLflow runs logged without an experiment')
         ON CONFLICT (team_id, name) DO NOTHING`,
        [`p${randomBytes(12).toString('hex')}`, ctx.actor.teamId],
      );
    }
    const r = await ctx.db.pool.query<ProjectRow>(
      `SELECT ${PROJECT_COLS} FROM project p WHERE p.team_id = $1 AND p.name = 'Default'`,
      [ctx.actor.teamId],
    );
    if (r.rows[0]) return r.rows[0];
  } else {
    const r = await ctx.db.pool.query<ProjectRow>(
      `SELECT ${PROJECT_COLS} FROM project p WHERE p.id = $1 AND p.team_id = $2`,
      [id, ctx.actor.teamId],
    );
    if (r.rows[0]) return r.rows[0];
  }
  throw new MlflowError('RESOURCE_DOES_NOT_EXIST', `No Experiment with id=${id} exists`);
}

interface RunRow {
  id: string;
  num: string;
  project_id: string;
  name: string;
  status: string;
  config: Record<string, unknown>;
  kv_tags: Record<string, string>;
  method: string;
  constraint: string;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}
const RUN_COLS = `r.id, r.num::text AS num, r.project_id, r.name, r.status::text AS status, r.config, r.kv_tags, r.method, r."constraint", r.created_at, r.started_at, r.finished_at`;

async function runOf(ctx: Ctx, id: string, c: Pick<Db['pool'], 'query'> = ctx.db.pool, lock = false): Promise<RunRow> {
  const r = await c.query<RunRow>(
    `SELECT ${RUN_COLS} FROM run r JOIN project p ON p.id = r.project_id WHERE r.id = $1 AND p.team_id = $2 ${lock ? 'FOR UPDATE OF r' : ''}`,
    [id, ctx.actor.teamId],
  );
  if (!r.rows[0]) throw runNotFound(id);
  return r.rows[0];
}

/** Config entries as MLflow params: nested objects flatten to dotted keys; values are strings. */
function params(config: Record<string, unknown>, prefix = ''): { key: string; value: string }[] {
  return Object.entries(config ?? {}).flatMap(([k, v]) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? params(v as Record<string, unknown>, `${prefix}${k}.`)
      : [{ key: `${prefix}${k}`, value: typeof v === 'string' ? v : JSON.stringify(v) }],
  );
}

/** A param value as stored: a plain decimal becomes a number (so config filters and charts can use it), else the string. */
function storedParam(v: string): string | number {
  return /^-?(0|[1-9]\d{0,14})(\.\d+)?$/.test(v) && String(Number(v)) === v ? Number(v) : v;
}

function runInfo(r: RunRow) {
  return {
    run_id: r.id,
    run_uuid: r.id,
    run_name: r.name,
    experiment_id: r.project_id,
    user_id: r.kv_tags['mlflow.user'] ?? '',
    status: STATUS[r.status] ?? 'RUNNING',
    start_time: (r.started_at ?? r.created_at).getTime(),
    ...(r.finished_at ? { end_time: r.finished_at.getTime() } : {}),
    artifact_uri: `mlflow-artifacts:/${r.project_id}/${r.id}/artifacts`,
    lifecycle_stage: 'active',
  };
}

async function runsJson(ctx: Ctx, rows: RunRow[]) {
  if (!rows.length) return [];
  const m = await ctx.db.pool.query<{ run_id: string; key: string; last_value: number; last_step: number; t: Date }>(
    `SELECT run_id, key, last_value, last_step, updated_at AS t FROM run_metric WHERE run_id = ANY($1::text[]) ORDER BY key`,
    [rows.map((r) => r.id)],
  );
  const byRun = new Map<string, { key: string; value: number; timestamp: number; step: number }[]>();
  for (const x of m.rows)
    (byRun.get(x.run_id) ?? byRun.set(x.run_id, []).get(x.run_id)!).push({
      key: x.key,
      value: x.last_value,
      timestamp: x.t.getTime(),
      step: x.last_step,
    });
  return rows.map((r) => ({
    info: runInfo(r),
    data: {
      metrics: byRun.get(r.id) ?? [],
      params: params(r.config),
      tags: Object.entries({ ...r.kv_tags, 'mlflow.runName': r.name }).map(([key, value]) => ({
        key,
        value: String(value),
      })),
    },
    inputs: {},
  }));
}

async function notify(c: Pick<Db['pool'], 'query'>, runId: string) {
  await c.query('UPDATE run SET write_seq = write_seq + 1, updated_at = now(), heartbeat_at = now() WHERE id = $1', [
    runId,
  ]);
  await c.query('SELECT pg_notify($1, $2)', [RUN_CHANNEL, runId]);
}

/** Runs `fn` on the run locked in a transaction, then announces the write to live pages. */
async function withRun(
  ctx: Ctx,
  id: string,
  fn: (c: Pick<Db['pool'], 'query'>, run: RunRow) => Promise<void>,
): Promise<void> {
  await withTransaction(ctx.db.pool, async (c) => {
    const run = await runOf(ctx, id, c, true);
    await fn(c, run);
    await notify(c, run.id);
  });
}

/** Tags that also set run columns: the name, and AFT's method and constraint (so MLflow runs group with ours). */
function columnsFromTags(tags: Record<string, string>): { name?: string; method?: string; constraint?: string } {
  const out: { name?: string; method?: string; constraint?: string } = {};
  if (tags['mlflow.runName']) out.name = tags['mlflow.runName'].slice(0, 200);
  const m = tags['aft.method']?.toLowerCase();
  if (m && /^[a-z0-9_-]{1,32}$/.test(m)) out.method = m;
  const c = tags['aft.constraint']?.toLowerCase();
  if (c && /^[a-z0-9_-]{1,32}$/.test(c)) out.constraint = c;
  return out;
}

async function setTags(ctx: Ctx, c: Pick<Db['pool'], 'query'>, run: RunRow, tags: Record<string, string>) {
  const cols = columnsFromTags(tags);
  await c.query(
    `UPDATE run SET kv_tags = kv_tags || $2::jsonb, name = COALESCE($3, name), method = COALESCE($4, method), "constraint" = COALESCE($5, "constraint") WHERE id = $1`,
    [run.id, JSON.stringify(tags), cols.name ?? null, cols.method ?? null, cols.constraint ?? null],
  );
}

/** Params are immutable once logged: the same value again is fine, a different one is refused (MLflow's rule). */
async function logParams(ctx: Ctx, c: Pick<Db['pool'], 'query'>, run: RunRow, ps: { key: string; value: string }[]) {
  const existing = new Map(params(run.config).map((p) => [p.key, p.value]));
  const next: Record<string, string | number> = {};
  for (const p of ps) {
    const had = existing.get(p.key) ?? (next[p.key] !== undefined ? String(next[p.key]) : undefined);
    if (had !== undefined && had !== p.value) {
      throw bad(
        `Changing param values is not allowed. Param with key='${p.key}' was already logged with value='${had}' for run ID='${run.id}'. Attempted logging new value '${p.value}'.`,
      );
    }
    next[p.key] = storedParam(p.value);
  }
  const fresh = Object.fromEntries(Object.entries(next).filter(([k]) => !existing.has(k)));
  if (!Object.keys(fresh).length) return;
  const config = { ...run.config, ...fresh };
  await c.query('UPDATE run SET config = $2::jsonb, config_hash = $3 WHERE id = $1', [
    run.id,
    JSON.stringify(config),
    configHash(config),
  ]);
}

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

/** Stores points of a run of the team (RunNotFoundError, answered as RESOURCE_DOES_NOT_EXIST, when it is not). */
async function logMetrics(ctx: Ctx, runId: string, ms: z.infer<typeof metric>[]) {
  if (!ms.length) return;
  const keys = [...new Set(ms.map((m) => m.key))];
  const idx = new Map(keys.map((k, i) => [k, i]));
  const now = Date.now();
  await insertMetricPoints(
    ctx.db.pool,
    runId,
    {
      keys,
      key: ms.map((m) => idx.get(m.key)!),
      step: ms.map((m) => m.step),
      value: ms.map((m) => m.value),
      time: ms.map((m) => m.timestamp ?? now),
    },
    { teamId: ctx.actor.teamId },
  );
  // the latest value of each key into the run's summary, so the runs table and the results can sort on it
  await ctx.db.pool.query(
    `UPDATE run SET summary = summary || (
       SELECT jsonb_object_agg(key, CASE WHEN last_value IN ('NaN', 'Infinity', '-Infinity') THEN to_jsonb(last_value::text) ELSE to_jsonb(last_value) END)
       FROM run_metric WHERE run_id = $1 AND key = ANY($2::text[]))
     WHERE id = $1`,
    [runId, keys],
  );
}

function pageOffset(token: string | undefined): number {
  if (!token) return 0;
  // our tokens are base64url of a plain offset; anything else (1e20, -1, junk) would reach OFFSET and fail there
  const s = Buffer.from(token, 'base64url').toString('utf8');
  if (!/^\d{1,12}$/.test(s)) throw bad('Invalid page_token: pass the next_page_token of the previous page');
  return Number(s);
}
const nextToken = (offset: number, got: number, limit: number) =>
  got > limit ? Buffer.from(String(offset + limit)).toString('base64url') : undefined;

// ---------------------------------------------------------------------------------------------------------------
// Endpoints: path → [permission, handler]

type Handler = (ctx: Ctx, input: Record<string, unknown>) => Promise<unknown>;

const ENDPOINTS: Record<string, [Permission, Handler]> = {
  'experiments/create': [
    'log',
    async (ctx, input) => {
      const i = parse(
        z.object({
          name: z
            .string({ message: "Missing value for required parameter 'name'." })
            .trim()
            .min(1, 'Experiment name must not be empty')
            .max(100),
          artifact_location: z.string().optional(),
          tags: z.array(tag).max(100).optional(),
        }),
        input,
      );
      const id = `p${randomBytes(12).toString('hex')}`;
      const note = i.tags?.find((t) => t.key === 'mlflow.note.content')?.value ?? '';
      const r = await ctx.db.pool.query(
        `INSERT INTO project (id, team_id, name, description) VALUES ($1, $2, $3, $4) ON CONFLICT (team_id, name) DO NOTHING`,
        [id, ctx.actor.teamId, i.name, note],
      );
      if (!r.rowCount) throw new MlflowError('RESOURCE_ALREADY_EXISTS', `Experiment '${i.name}' already exists.`);
      return { experiment_id: id };
    },
  ],
  'experiments/get': [
    'read',
    async (ctx, input) => {
      const i = parse(
        z.object({
          experiment_id: z.string({ message: "Missing value for required parameter 'experiment_id'." }).min(1).max(64),
        }),
        input,
      );
      return { experiment: experimentJson(await experiment(ctx, i.experiment_id)) };
    },
  ],
  'experiments/get-by-name': [
    'read',
    async (ctx, input) => {
      const i = parse(
        z.object({
          experiment_name: z
            .string({ message: "Missing value for required parameter 'experiment_name'." })
            .min(1)
            .max(200),
        }),
        input,
      );
      const r = await ctx.db.pool.query<ProjectRow>(
        `SELECT ${PROJECT_COLS} FROM project p WHERE p.team_id = $1 AND p.name = $2`,
        [ctx.actor.teamId, i.experiment_name],
      );
      if (!r.rows[0])
        throw new MlflowError('RESOURCE_DOES_NOT_EXIST', `Could not find experiment with name '${i.experiment_name}'`);
      return { experiment: experimentJson(r.rows[0]) };
    },
  ],
  'experiments/search': ['read', (ctx, input) => searchExperiments(ctx, input)],
  'experiments/list': [
    'read',
    async (ctx, input) => {
      const r = (await searchExperiments(ctx, { ...input, max_results: input['max_results'] ?? 1000 })) as {
        experiments: unknown[];
      };
      return { experiments: r.experiments };
    },
  ],
  'runs/create': [
    'log',
    async (ctx, input) => {
      const i = parse(
        z.object({
          experiment_id: z.string().min(1).max(64).default('0'),
          user_id: z.string().max(200).optional(),
          run_name: z.string().max(200).optional(),
          start_time: epochMs('start_time').optional(),
          tags: z.array(tag).max(1000, 'a request can contain at most 1000 tags').default([]),
        }),
        input,
      );
      const exp = await experiment(ctx, i.experiment_id, true);
      const tags: Record<string, string> = Object.fromEntries(i.tags.map((t) => [t.key, t.value]));
      if (i.user_id) tags['mlflow.user'] ??= i.user_id;
      const cols = columnsFromTags(tags);
      const runName = (i.run_name || cols.name || `external-${randomBytes(3).toString('hex')}`).slice(0, 200);
      tags['mlflow.runName'] = runName;
      const id = randomBytes(16).toString('hex'); // MLflow's run ids are 32 hex digits
      await ctx.db.pool.query(
        `INSERT INTO run (id, project_id, name, method, "constraint", status, started_at, kv_tags, config_hash)
         VALUES ($1, $2, $3, $4, $5, 'running', $6, $7::jsonb, $8)`,
        [
          id,
          exp.id,
          runName,
          cols.method ?? 'external',
          cols.constraint ?? 'none',
          new Date(i.start_time ?? Date.now()),
          JSON.stringify(tags),
          configHash({}),
        ],
      );
      return { run: (await runsJson(ctx, [await runOf(ctx, id)]))[0] };
    },
  ],
  'runs/get': [
    'read',
    async (ctx, input) => {
      const id = runIdOf(parse(runId, input));
      return { run: (await runsJson(ctx, [await runOf(ctx, id)]))[0] };
    },
  ],
  'runs/update': [
    'log',
    async (ctx, input) => {
      const i = parse(
        runId.extend({
          status: z
            .enum(['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED'], {
              message: 'status is one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED',
            })
            .optional(),
          end_time: epochMs('end_time').optional(),
          run_name: z.string().min(1).max(200).optional(),
        }),
        input,
      );
      const id = runIdOf(i);
      const run = await runOf(ctx, id);
      const status = i.status ? FROM_STATUS[i.status]! : null;
      const terminal = status && ['succeeded', 'failed', 'canceled'].includes(status);
      await withTransaction(ctx.db.pool, async (c) => {
        await c.query(
          `UPDATE run SET status = COALESCE($2::"RunStatus", status), name = COALESCE($3, name),
                  finished_at = CASE WHEN $4 THEN COALESCE($5, finished_at, now()) WHEN $2 IS NOT NULL THEN NULL ELSE COALESCE($5, finished_at) END
           WHERE id = $1`,
          [id, status, i.run_name ?? null, Boolean(terminal), i.end_time !== undefined ? new Date(i.end_time) : null],
        );
        if (terminal) await revokeRunTokens(c, id);
        if (i.run_name)
          await c.query(
            `UPDATE run SET kv_tags = kv_tags || jsonb_build_object('mlflow.runName', $2::text) WHERE id = $1`,
            [id, i.run_name],
          );
        await notify(c, id);
      });
      return { run_info: runInfo(await runOf(ctx, run.id)) };
    },
  ],
  'runs/delete': [
    'launch',
    async (ctx, input) => {
      const id = runIdOf(parse(runId, input));
      await deleteRun(ctx.db.pool, id, ctx.actor.teamId, (c, run) =>
        audit(
          ctx.db,
          {
            teamId: ctx.actor.teamId,
            userId: ctx.actor.userId,
            keyId: ctx.actor.keyId,
            action: 'run.delete',
            target: id,
            details: { name: run.name, via: 'mlflow' },
            ip: ctx.ip,
          },
          c,
        ),
      );
      await removeRunArtifactFiles(ctx.opts.artifactDir, id);
      return {};
    },
  ],
  'runs/search': ['read', (ctx, input) => searchRuns(ctx, input)],
  'runs/log-metric': [
    'log',
    async (ctx, input) => {
      const i = parse(runId.and(metric), input);
      await logMetrics(ctx, runIdOf(i), [i]);
      return {};
    },
  ],
  'runs/log-parameter': [
    'log',
    async (ctx, input) => {
      const i = parse(runId.and(param), input);
      await withRun(ctx, runIdOf(i), async (c, run) => {
        await logParams(ctx, c, run, [i]);
      });
      return {};
    },
  ],
  'runs/set-tag': [
    'log',
    async (ctx, input) => {
      const i = parse(runId.and(tag), input);
      await withRun(ctx, runIdOf(i), async (c, run) => {
        await setTags(ctx, c, run, { [i.key]: i.value });
      });
      return {};
    },
  ],
  'runs/delete-tag': [
    'log',
    async (ctx, input) => {
      const i = parse(runId.extend({ key: name('tag key') }), input);
      await withRun(ctx, runIdOf(i), async (c, run) => {
        if (!(i.key in run.kv_tags))
          throw new MlflowError('RESOURCE_DOES_NOT_EXIST', `No tag with name: ${i.key} in run with id ${run.id}`);
        await c.query('UPDATE run SET kv_tags = kv_tags - $2 WHERE id = $1', [run.id, i.key]);
      });
      return {};
    },
  ],
  'runs/log-batch': [
    'log',
    async (ctx, input) => {
      // MLflow's limits are checked before anything else is read or written
      const count = (k: string) => (Array.isArray(input[k]) ? (input[k] as unknown[]).length : 0);
      const [nm, np, nt] = [count('metrics'), count('params'), count('tags')];
      const over = (n: number, max: number, what: string) => {
        if (n > max)
          throw bad(
            `A batch logging request can contain at most ${max} ${what}. Got ${n} ${what}. Please split up ${what} across multiple requests and try again.`,
          );
      };
      over(nm, MLFLOW_LIMITS.metricsPerBatch, 'metrics');
      over(np, MLFLOW_LIMITS.paramsPerBatch, 'params');
      over(nt, MLFLOW_LIMITS.tagsPerBatch, 'tags');
      if (nm + np + nt > MLFLOW_LIMITS.entitiesPerBatch) {
        throw bad(
          `A batch logging request can contain at most ${MLFLOW_LIMITS.entitiesPerBatch} metrics, params, and tags in total. Got ${nm + np + nt} in total.`,
        );
      }
      const i = parse(
        runId.extend({
          metrics: z.array(metric).default([]),
          params: z.array(param).default([]),
          tags: z.array(tag).default([]),
        }),
        input,
      );
      const id = runIdOf(i);
      // params and tags first, in one transaction (a conflicting param refuses the whole batch), then the metrics
      await withRun(ctx, id, async (c, run) => {
        await logParams(ctx, c, run, i.params);
        if (i.tags.length) await setTags(ctx, c, run, Object.fromEntries(i.tags.map((t) => [t.key, t.value])));
      });
      await logMetrics(ctx, id, i.metrics);
      return {};
    },
  ],
  'metrics/get-history': [
    'read',
    async (ctx, input) => {
      const i = parse(
        runId.extend({
          metric_key: z.string({ message: "Missing value for required parameter 'metric_key'." }).min(1).max(250),
          max_results: maxResults(MLFLOW_LIMITS.historyMaxResults, MLFLOW_LIMITS.historyMaxResults),
          page_token: pageToken,
        }),
        input,
      );
      const run = await runOf(ctx, runIdOf(i));
      const offset = pageOffset(i.page_token);
      const r = await ctx.db.pool.query<{ step: number; value: number; t: string }>(
        `SELECT p.step, p.value, (extract(epoch FROM p.wall_time) * 1000)::bigint::text AS t FROM metric_point p JOIN metric_key k ON k.id = p.key_id
         WHERE p.run_num = $1 AND k.name = $2 ORDER BY p.step LIMIT $3 OFFSET $4`,
        [run.num, i.metric_key, i.max_results + 1, offset],
      );
      const rows = r.rows.slice(0, i.max_results);
      const token = nextToken(offset, r.rows.length, i.max_results);
      return {
        metrics: rows.map((p) => ({ key: i.metric_key, value: p.value, timestamp: Number(p.t), step: p.step })),
        ...(token ? { next_page_token: token } : {}),
      };
    },
  ],
  'artifacts/list': [
    'read',
    async (ctx, input) => {
      const i = parse(runId.extend({ path: z.string().max(1000).optional(), page_token: pageToken }), input);
      const run = await runOf(ctx, runIdOf(i));
      return { root_uri: runInfo(run).artifact_uri, files: await listArtifacts(ctx, run, i.path ?? '') };
    },
  ],
};

async function searchExperiments(ctx: Ctx, input: Record<string, unknown>) {
  const i = parse(
    z.object({
      max_results: maxResults(50_000, 1000),
      page_token: pageToken,
      filter: z.string().max(2000).optional(),
      order_by: list(z.string().max(200), 20).optional(),
      view_type: z.enum(['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL']).default('ACTIVE_ONLY'),
    }),
    input,
  );
  if (i.view_type === 'DELETED_ONLY') return { experiments: [] };
  const where = ['p.team_id = $1'];
  const ps: unknown[] = [ctx.actor.teamId];
  // one whitespace character on each side, not \s+: that retried each run of spaces from every position in it
  for (const clause of (i.filter ?? '').split(/\sAND\s/i).filter((s) => s.trim())) {
    const m = /^\s*(?:attributes?\.)?(name|experiment_name)\s*(=|!=|LIKE|ILIKE)\s*(['"])(.*)\3\s*$/i.exec(clause);
    if (!m)
      throw bad(
        `Invalid experiment filter "${clause}": filter on name with =, !=, LIKE or ILIKE, e.g. name LIKE 'gsm8k%'`,
      );
    ps.push(m[4]);
    where.push(`p.name ${m[2]!.toUpperCase() === '!=' ? '<>' : m[2]!.toUpperCase()} $${ps.length}`);
  }
  const offset = pageOffset(i.page_token);
  const orderBy = (i.order_by ?? []).map((o) => {
    const m = /^\s*(?:attributes?\.)?(name|experiment_id|creation_time|last_update_time)(?:\s+(ASC|DESC))?\s*$/i.exec(
      o,
    );
    if (!m)
      throw bad(`Invalid order_by "${o}": order experiments by name, experiment_id, creation_time or last_update_time`);
    const col = { name: 'p.name', experiment_id: 'p.id', creation_time: 'p.created_at', last_update_time: 'updated' }[
      m[1]!.toLowerCase()
    ]!;
    return `${col} ${(m[2] ?? 'ASC').toUpperCase()}`;
  });
  const r = await ctx.db.pool.query<ProjectRow>(
    `SELECT ${PROJECT_COLS} FROM project p WHERE ${where.join(' AND ')} ORDER BY ${[...orderBy, 'p.created_at DESC', 'p.id'].join(', ')} LIMIT ${i.max_results + 1} OFFSET ${offset}`,
    ps,
  );
  const token = nextToken(offset, r.rows.length, i.max_results);
  return {
    experiments: r.rows.slice(0, i.max_results).map(experimentJson),
    ...(token ? { next_page_token: token } : {}),
  };
}

async function searchRuns(ctx: Ctx, input: Record<string, unknown>) {
  const i = parse(
    z.object({
      experiment_ids: list(z.string().min(1).max(64), 1000).default([]),
      filter: z.string().max(10_000).optional(),
      run_view_type: z.enum(['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL']).default('ACTIVE_ONLY'),
      max_results: maxResults(MLFLOW_LIMITS.searchMaxResults, 1000),
      order_by: list(z.string().max(300), 20).optional(),
      page_token: pageToken,
    }),
    input,
  );
  if (!i.experiment_ids.length) throw bad('experiment_ids must name at least one experiment');
  if (i.run_view_type === 'DELETED_ONLY') return { runs: [] };
  const ids: string[] = [];
  for (const e of i.experiment_ids) {
    try {
      ids.push((await experiment(ctx, e)).id);
    } catch (err) {
      if (!(err instanceof MlflowError)) throw err; // an experiment that is not the team's matches no run
    }
  }
  const ps: unknown[] = [ids];
  let where: string[];
  let order: string[];
  try {
    where = compileRunFilter(i.filter ?? '', ps).where;
    order = compileOrderBy(i.order_by ?? [], ps);
  } catch (e) {
    if (e instanceof FilterError) throw bad(`Invalid filter: ${e.message}`);
    throw e;
  }
  const offset = pageOffset(i.page_token);
  const r = await ctx.db.pool.query<RunRow>(
    `SELECT ${RUN_COLS} FROM run r WHERE r.project_id = ANY($1::text[]) ${where.map((w) => `AND ${w}`).join(' ')}
     ORDER BY ${[...order, 'COALESCE(r.started_at, r.created_at) DESC', 'r.id'].join(', ')} LIMIT ${i.max_results + 1} OFFSET ${offset}`,
    ps,
  );
  const token = nextToken(offset, r.rows.length, i.max_results);
  return { runs: await runsJson(ctx, r.rows.slice(0, i.max_results)), ...(token ? { next_page_token: token } : {}) };
}

// ---------------------------------------------------------------------------------------------------------------
// Artifacts: small files kept on the server's disk, recorded in the artifact table.

/**
 * `p` without leading and trailing slashes. Not `replace(/^\/+|\/+$/g)`: its `\/+$` retries a run of slashes from
 * each position in it, seconds for a 16 KB URL of slashes.
 */
function trimSlashes(p: string): string {
  let a = 0;
  let b = p.length;
  while (a < b && p[a] === '/') a++;
  while (b > a && p[b - 1] === '/') b--;
  return p.slice(a, b);
}

function artifactRelPath(p: string): string {
  const clean = trimSlashes(p);
  if (clean.split('/').some((s) => s === '..' || s === '.' || s === '') && clean !== '')
    throw bad(`Invalid artifact path '${p}'`);
  if (/[\0\\]/.test(clean)) throw bad(`Invalid artifact path '${p}'`);
  return clean;
}

async function listArtifacts(ctx: Ctx, run: RunRow, path: string) {
  const rel = artifactRelPath(path);
  const root = `${runInfo(run).artifact_uri}/`;
  const r = await ctx.db.pool.query<{ uri: string; bytes: string | null }>(
    `SELECT uri, bytes::text AS bytes FROM artifact WHERE run_id = $1 AND uri LIKE $2 ORDER BY uri`,
    [run.id, `${root.replace(/[%_\\]/g, '\\$&')}%`],
  );
  const prefix = rel ? `${rel}/` : '';
  const seen = new Map<string, { path: string; is_dir: boolean; file_size?: number }>();
  for (const a of r.rows) {
    const p = a.uri.slice(root.length);
    if (!p.startsWith(prefix)) continue;
    const rest = p.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash >= 0) seen.set(prefix + rest.slice(0, slash), { path: prefix + rest.slice(0, slash), is_dir: true });
    else seen.set(p, { path: p, is_dir: false, file_size: Number(a.bytes ?? 0) });
  }
  return [...seen.values()];
}

/** A body read within its limit; over it, MLflow's error shape with 413. */
async function limitedBody<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    if (e instanceof BodyTooLargeError) throw new MlflowError('INVALID_PARAMETER_VALUE', e.message, 413);
    throw e;
  }
}

/** A %-escaped artifact path decoded; a malformed escape (`%E0%A4%A`) is the caller's mistake, not a 500. */
function decodePath(p: string, decode: (s: string) => string): string {
  try {
    return decode(p);
  } catch {
    throw bad(`Invalid artifact path '${p}': it holds a malformed % escape`);
  }
}

const DEFAULT_TEAM_STORAGE = 10 * 1024 ** 3;

/** MLflow's shape for a refusal over the team's storage quota (413: a client must not retry it as it would a 429). */
const overQuota = (quota: number, used: number) =>
  new MlflowError(
    'RESOURCE_EXHAUSTED',
    `this artifact would take the team past its artifact storage quota of ${quota} bytes (AFT_TEAM_STORAGE_BYTES); ${used} bytes are in use — delete runs to free space`,
    413,
  );

/** A file where a folder is (or a folder where a file is): refused with what is in the way, not a 500 from the disk. */
const clash = (rel: string, what: string) =>
  new MlflowError('RESOURCE_ALREADY_EXISTS', `Cannot upload artifact '${rel}': ${what}`, 409);

/** `<experiment>/<run>/artifacts/<path>` → the run, the relative path and where the file lives. */
async function artifactTarget(ctx: Ctx, path: string) {
  const m = /^([^/]+)\/([^/]+)\/artifacts(?:\/(.*))?$/.exec(path.replace(/^\/+/, ''));
  if (!m) throw bad(`Invalid artifact path '${path}': expected <experiment_id>/<run_id>/artifacts/<path>`);
  const run = await runOf(ctx, m[2]!);
  if (run.project_id !== m[1] && m[1] !== '0') throw runNotFound(m[2]!);
  const rel = artifactRelPath(decodePath(m[3] ?? '', decodeURIComponent));
  const base = resolve(ctx.opts.artifactDir, 'mlflow', run.id);
  const file = resolve(base, rel);
  if (file !== base && !file.startsWith(base + sep)) throw bad(`Invalid artifact path '${path}'`);
  return { run, rel, file };
}

async function artifactRequest(ctx: Ctx, req: Request, path: string): Promise<Response> {
  if (req.method === 'PUT') {
    need(ctx, 'log');
    const { run, rel, file } = await artifactTarget(ctx, path);
    if (!rel) throw bad('give the artifact a file name');
    const max = ctx.opts.maxArtifactBytes ?? 16 * 1024 * 1024;
    const quota = ctx.opts.teamStorageBytes ?? DEFAULT_TEAM_STORAGE;
    const root = `${runInfo(run).artifact_uri}/`;
    const uri = `${root}${rel}`;
    const above = await artifactPathClash(ctx.db.pool, run.id, root, rel);
    if (above?.kind === 'file-above') throw clash(rel, `'${above.path}' is a file, so it cannot be a folder`);
    if (above?.kind === 'folder') throw clash(rel, `'${rel}' is a folder of artifacts, so it cannot be a file`);
    // the bytes are counted as they arrive and the read stops at what the quota has left: an upload never
    // costs more than that, whatever Content-Length says (a chunked body has none)
    const used = await teamArtifactBytes(ctx.db.pool, ctx.actor.teamId, { runId: run.id, uri });
    const room = Math.max(0, quota - used);
    let body: Buffer;
    try {
      body = Buffer.from(await readBody(req, Math.min(max, room), 'artifact'));
    } catch (e) {
      if (e instanceof BodyTooLargeError && room < max) throw overQuota(quota, used);
      throw e instanceof BodyTooLargeError ? new MlflowError('INVALID_PARAMETER_VALUE', e.message, 413) : e;
    }
    await mkdir(dirname(file), { recursive: true }).catch((e: NodeJS.ErrnoException) => {
      throw e.code === 'EEXIST' || e.code === 'ENOTDIR' ? clash(rel, 'a file is in the way of its folder') : e;
    });
    const tmp = `${file}.${randomBytes(4).toString('hex')}.part`;
    await writeFile(tmp, body);
    try {
      await withTransaction(ctx.db.pool, async (c) => {
        // checked again under the team's lock: uploads running side by side cannot both fit in the last of it
        await lockTeamStorage(c, ctx.actor.teamId);
        const now = await teamArtifactBytes(c, ctx.actor.teamId, { runId: run.id, uri });
        if (now + body.length > quota) throw overQuota(quota, now);
        await c.query(
          `INSERT INTO artifact (id, run_id, kind, name, uri, sha256, bytes, metadata) VALUES ($1, $2, 'other', $3, $4, $5, $6, $7)
           ON CONFLICT (run_id, uri) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes, metadata = excluded.metadata`,
          [
            `a${randomBytes(12).toString('hex')}`,
            run.id,
            rel.split('/').pop(),
            uri,
            createHash('sha256').update(body).digest('hex'),
            body.length,
            JSON.stringify({ source: 'mlflow', path: rel }),
          ],
        );
        await rename(tmp, file).catch((e: NodeJS.ErrnoException) => {
          throw e.code === 'EISDIR' || e.code === 'ENOTDIR' || e.code === 'ENOTEMPTY'
            ? clash(rel, `'${rel}' is a folder of artifacts, so it cannot be a file`)
            : e;
        });
      });
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
    await notify(ctx.db.pool, run.id);
    return json({});
  }
  need(ctx, 'read');
  if (!path) {
    // the artifact proxy's listing: GET /mlflow-artifacts/artifacts?path=<exp>/<run>/artifacts/<dir>
    const q = new URL(req.url).searchParams.get('path') ?? '';
    const { run, rel } = await artifactTarget(ctx, q);
    const files = await listArtifacts(ctx, run, rel);
    const root = `${trimSlashes(q).split('/').slice(0, 3).join('/')}/`;
    return json({ files: files.map((f) => ({ ...f, path: f.path.slice(rel ? rel.length + 1 : 0) || f.path })), root });
  }
  const { file, rel } = await artifactTarget(ctx, path);
  const s = await stat(file).catch(() => null);
  if (!s || !s.isFile()) throw new MlflowError('RESOURCE_DOES_NOT_EXIST', `No artifact at '${path}'`);
  return new Response(Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>, {
    headers: {
      'content-type': 'application/octet-stream',
      'content-length': String(s.size),
      ...downloadHeaders(rel.split('/').pop()!),
    },
  });
}

// ---------------------------------------------------------------------------------------------------------------

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

/** The MLflow API as a fetch handler (Request → Response), mounted by the web app's routes. */
export function createMlflowHandler(opts: MlflowOptions) {
  const maxBody = opts.maxBodyBytes ?? 8 * 1024 * 1024;
  return async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    try {
      const api = API.exec(url.pathname);
      const art = ARTIFACTS.exec(url.pathname);
      const getArtifact = url.pathname === '/get-artifact';
      const endpoint = api ? ENDPOINTS[api[1]!] : undefined;
      if (!endpoint && !art && !getArtifact) {
        throw new MlflowError(
          'ENDPOINT_NOT_FOUND',
          `No API endpoint for ${req.method} ${url.pathname}: this server implements ${Object.keys(ENDPOINTS).join(', ')}`,
          404,
        );
      }
      const method = req.method === 'HEAD' ? 'GET' : req.method; // Next answers HEAD with the GET handler
      const allowed = endpoint ? methodsOf(api![1]!, endpoint[0]) : art ? ['GET', 'PUT'] : ['GET'];
      if (!allowed.includes(method)) {
        throw new MlflowError(
          'ENDPOINT_NOT_FOUND',
          `${req.method} is not allowed on ${url.pathname}: use ${allowed.join(' or ')}, as MLflow's REST API does`,
          405,
          { allow: allowed.join(', ') },
        );
      }
      if (endpoint && method === 'POST') {
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
      let actor: Actor;
      try {
        actor = await resolveActor(base);
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
      const ctx: Ctx = { db: opts.db, actor, ip: base.ip ?? null, opts };
      if (actor.via === 'user' && ((api && KEY_ONLY.has(api[1]!)) || (art && method === 'PUT'))) {
        throw new MlflowError(
          'PERMISSION_DENIED',
          'logging needs an API key, not a signed-in session: MLflow clients set MLFLOW_TRACKING_TOKEN to an AFT Lab API key',
          403,
        );
      }
      if (art) return await artifactRequest(ctx, req, decodePath(art[1] ?? '', decodeURI));
      if (getArtifact) {
        const q = url.searchParams;
        const run = await runOf(ctx, q.get('run_uuid') ?? q.get('run_id') ?? '');
        return await artifactRequest(
          ctx,
          new Request(req.url, { method: 'GET', headers: req.headers }),
          `${run.project_id}/${run.id}/artifacts/${q.get('path') ?? ''}`,
        );
      }
      const [permission, handle] = endpoint!;
      let input: Record<string, unknown> = {};
      // as in MLflow, a GET reads its query string and a POST its JSON body only
      for (const [k, v] of method === 'GET' ? url.searchParams : []) {
        // repeated GET parameters (experiment_ids=1&experiment_ids=2) become lists
        input[k] = k in input ? ([] as unknown[]).concat(input[k], v) : v;
      }
      if (method === 'POST') {
        const text = await limitedBody(() => readBodyText(req, maxBody));
        if (text.trim()) {
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
          input = { ...input, ...(body as Record<string, unknown>) };
        }
      }
      need(ctx, permission);
      if (permission !== 'read') await chargeWrite(ctx, writeUnits(input));
      return json(await handle(ctx, input));
    } catch (e) {
      if (e instanceof MlflowError) return errorResponse(e);
      if (e instanceof RunNotFoundError) return errorResponse(runNotFound(e.runId));
      if (e instanceof MetricKeyCapError)
        return json({ error_code: 'INVALID_PARAMETER_VALUE', message: e.message }, 400);
      if (isStatementTimeout(e)) {
        return json(
          {
            error_code: 'TEMPORARILY_UNAVAILABLE',
            message: 'the database query took too long and was stopped; retry, or ask for less',
          },
          503,
        );
      }
      console.error('[mlflow]', url.pathname, e);
      return json({ error_code: 'INTERNAL_ERROR', message: 'internal error' }, 500);
    }
  };
}
