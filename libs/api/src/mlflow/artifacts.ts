/**
 * Artifacts: small files kept in the artifact store (a directory, or S3: ../artifact-files.ts), one folder per run,
 * recorded in the artifact table.
 *
 *   /api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts/<path>   PUT uploads, GET downloads
 *   /api/2.0/mlflow-artifacts/artifacts?path=<exp>/<run>/artifacts/<dir>   the artifact proxy's listing
 *   /get-artifact?run_id=…&path=…   and the endpoint artifacts/list
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { z } from 'zod';
import {
  artifactPathClash,
  insertSampleRows,
  listStoredArtifacts,
  lockTeamStorage,
  saveStoredArtifact,
  teamArtifactBytes,
  withTransaction,
  type MlflowRunRow,
} from '@aft/db';
import {
  ArtifactNotFoundError,
  BadKeyError,
  checkKey,
  ChecksumMismatchError,
  isTransient,
  KeyConflictError,
} from '@aft/storage';
import { artifactStoreOf, downloadHeaders, runArtifactPrefix } from '../artifact-files';
import { BodyTooLargeError, readBody } from '../body';
import { runInfo, runOf } from './runs';
import { sampleTable } from './tables';
import { bad, json, MlflowError, need, pageToken, parse, runId, runIdOf, runNotFound, type Ctx } from './wire';
import type { Endpoint } from './wire';

const DEFAULT_MAX_ARTIFACT = 16 * 1024 * 1024;
const DEFAULT_TEAM_STORAGE = 10 * 1024 ** 3;

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

/** The files and folders directly under `path` among the run's artifacts. */
async function listArtifacts(ctx: Ctx, run: MlflowRunRow, path: string) {
  const rel = artifactRelPath(path);
  const root = `${runInfo(run).artifact_uri}/`;
  const prefix = rel ? `${rel}/` : '';
  const seen = new Map<string, { path: string; is_dir: boolean; file_size?: number }>();
  for (const a of await listStoredArtifacts(ctx.db.pool, run.id, root)) {
    const p = a.uri.slice(root.length);
    if (!p.startsWith(prefix)) continue;
    const rest = p.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash >= 0) seen.set(prefix + rest.slice(0, slash), { path: prefix + rest.slice(0, slash), is_dir: true });
    else seen.set(p, { path: p, is_dir: false, file_size: Number(a.bytes ?? 0) });
  }
  return [...seen.values()];
}

/** A %-escaped artifact path decoded; a malformed escape (`%E0%A4%A`) is the caller's mistake, not a 500. */
function decodePath(p: string, decode: (s: string) => string): string {
  try {
    return decode(p);
  } catch {
    throw bad(`Invalid artifact path '${p}': it holds a malformed % escape`);
  }
}

/** MLflow's shape for a refusal over the team's storage quota (413: a client must not retry it as it would a 429). */
const overQuota = (quota: number, used: number) =>
  new MlflowError(
    'RESOURCE_EXHAUSTED',
    `this artifact would take the team past its artifact storage quota of ${quota} bytes (AFT_TEAM_STORAGE_BYTES); ${used} bytes are in use — delete runs to free space`,
    413,
  );

/** The store (S3) unreachable after its retries: a 503, which MLflow clients retry. */
const storeDown = (e: unknown) =>
  new MlflowError('TEMPORARILY_UNAVAILABLE', `the artifact store did not answer (${(e as Error).message}); retry`, 503);

/** A file where a folder is (or a folder where a file is): refused with what is in the way, not a 500 from the disk. */
const clash = (rel: string, what: string) =>
  new MlflowError('RESOURCE_ALREADY_EXISTS', `Cannot upload artifact '${rel}': ${what}`, 409);

/** `<experiment>/<run>/artifacts/<path>` → the run, the relative path and its key in the store ('' for the root). */
async function artifactTarget(ctx: Ctx, path: string) {
  const m = /^([^/]+)\/([^/]+)\/artifacts(?:\/(.*))?$/.exec(path.replace(/^\/+/, ''));
  if (!m) throw bad(`Invalid artifact path '${path}': expected <experiment_id>/<run_id>/artifacts/<path>`);
  const run = await runOf(ctx, m[2]!);
  if (run.project_id !== m[1] && m[1] !== '0') throw runNotFound(m[2]!);
  const rel = artifactRelPath(decodePath(m[3] ?? '', decodeURIComponent));
  try {
    return { run, rel, key: rel ? checkKey(runArtifactPrefix(run.id) + rel) : '' };
  } catch (e) {
    // a path past what S3 keys hold (1024 bytes in all)
    throw e instanceof BadKeyError ? bad(`Invalid artifact path '${path}': too long`) : e;
  }
}

async function upload(ctx: Ctx, req: Request, path: string): Promise<Response> {
  need(ctx, 'log');
  const { run, rel, key } = await artifactTarget(ctx, path);
  if (!rel) throw bad('give the artifact a file name');
  const max = ctx.opts.maxArtifactBytes ?? DEFAULT_MAX_ARTIFACT;
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
  // generations logged with mlflow.log_table: samples, stored with the file or not at all (a bad row refuses both)
  const samples = await sampleTable(ctx, rel, body);
  const sha256 = createHash('sha256').update(body).digest('hex');
  await withTransaction(ctx.db.pool, async (c) => {
    // checked again under the team's lock: uploads running side by side cannot both fit in the last of it
    await lockTeamStorage(c, ctx.actor.teamId);
    const now = await teamArtifactBytes(c, ctx.actor.teamId, { runId: run.id, uri });
    if (now + body.length > quota) throw overQuota(quota, now);
    await saveStoredArtifact(c, run.id, ctx.actor.teamId, {
      name: rel.split('/').pop()!,
      uri,
      sha256,
      bytes: body.length,
      metadata: { source: 'mlflow', path: rel },
    });
    if (samples?.length) await insertSampleRows(c, run.id, samples);
    // the bytes last, in the transaction: a put refused (a clash on disk, the store unreachable) takes the record
    // with it, and a put is whole or nothing
    await artifactStoreOf(ctx.opts.artifactDir)
      .put(key, body, { sha256 })
      .catch((e: unknown) => {
        if (isTransient(e)) throw storeDown(e);
        if (!(e instanceof KeyConflictError)) throw e;
        throw e.kind === 'file-above'
          ? clash(rel, 'a file is in the way of its folder')
          : clash(rel, `'${rel}' is a folder of artifacts, so it cannot be a file`);
      });
  });
  return json({});
}

async function download(ctx: Ctx, path: string): Promise<Response> {
  const { key, rel } = await artifactTarget(ctx, path);
  const got = key
    ? await artifactStoreOf(ctx.opts.artifactDir)
        .get(key)
        .catch((e: unknown) => {
          if (e instanceof ArtifactNotFoundError) return null;
          if (isTransient(e)) throw storeDown(e);
          throw e instanceof ChecksumMismatchError ? new MlflowError('INTERNAL_ERROR', e.message, 500) : e;
        })
    : null;
  if (!got) throw new MlflowError('RESOURCE_DOES_NOT_EXIST', `No artifact at '${path}'`);
  // bytes that fail their checksum end the stream one chunk short (the client sees a broken download, never a
  // complete wrong file); the server's log says which artifact
  got.body.on('error', (e) => console.error(`[mlflow] download of ${key} stopped:`, e.message));
  return new Response(Readable.toWeb(got.body) as ReadableStream<Uint8Array>, {
    headers: {
      'content-type': 'application/octet-stream',
      'content-length': String(got.info.bytes),
      ...downloadHeaders(rel.split('/').pop()!),
    },
  });
}

/** The artifact proxy (`/mlflow-artifacts/artifacts[/<path>]`, the path still %-escaped): PUT uploads, GET reads. */
export async function proxyRequest(ctx: Ctx, req: Request, escapedPath: string): Promise<Response> {
  const path = decodePath(escapedPath, decodeURI);
  if (req.method === 'PUT') return upload(ctx, req, path);
  need(ctx, 'read');
  if (path) return download(ctx, path);
  // the artifact proxy's listing: GET /mlflow-artifacts/artifacts?path=<exp>/<run>/artifacts/<dir>
  const q = new URL(req.url).searchParams.get('path') ?? '';
  const { run, rel } = await artifactTarget(ctx, q);
  const files = await listArtifacts(ctx, run, rel);
  const root = `${trimSlashes(q).split('/').slice(0, 3).join('/')}/`;
  return json({ files: files.map((f) => ({ ...f, path: f.path.slice(rel ? rel.length + 1 : 0) || f.path })), root });
}

/** `/get-artifact?run_id=…&path=…` (what MLflow's UI fetches): a download by run id. */
export async function getArtifact(ctx: Ctx, url: URL): Promise<Response> {
  const q = url.searchParams;
  const run = await runOf(ctx, q.get('run_uuid') ?? q.get('run_id') ?? '');
  need(ctx, 'read');
  return download(ctx, `${run.project_id}/${run.id}/artifacts/${q.get('path') ?? ''}`);
}

export const list: Endpoint = async (ctx, input) => {
  const i = parse(runId.extend({ path: z.string().max(1000).optional(), page_token: pageToken }), input);
  const run = await runOf(ctx, runIdOf(i));
  return { root_uri: runInfo(run).artifact_uri, files: await listArtifacts(ctx, run, i.path ?? '') };
};
