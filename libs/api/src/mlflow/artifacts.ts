/**
 * Artifacts: small files kept in the artifact store (a directory, or S3: ../artifact-files.ts), one folder per run,
 * recorded in the artifact table. An upload's bytes go to the store first, at a key of their own, with no lock or
 * connection held while they travel; then one short transaction (the team's storage lock, the quota, the row that
 * names them). A download reads what the row names and checks it against the row's sha256.
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
  isLockTimeout,
  listStoredArtifacts,
  lockTeamStorage,
  saveStoredArtifact,
  storedArtifact,
  teamArtifactBytes,
  withTransaction,
  type MlflowRunRow,
} from '@aft/db';
import {
  ArtifactNotFoundError,
  BadKeyError,
  checkKey,
  ChecksumMismatchError,
  KeyConflictError,
  shownKey,
  type ArtifactStore,
} from '@aft/storage';
import { artifactStoreOf, downloadHeaders, newBlobKey, runArtifactPrefix, storedArtifactKey } from '../artifact-files';
import { BodyTooLargeError, readBody } from '../body';
import { runInfo, runOf } from './runs';
import { sampleTable } from './tables';
import { bad, json, MlflowError, need, pageToken, parse, runId, runIdOf, runNotFound, type Ctx } from './wire';
import type { Endpoint } from './wire';

const DEFAULT_MAX_ARTIFACT = 16 * 1024 * 1024;
const DEFAULT_TEAM_STORAGE = 10 * 1024 ** 3;
const DEFAULT_UPLOADS_PER_TEAM = 4;
const DEFAULT_LOCK_TIMEOUT_MS = 5_000;

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
  const rel = checkRel(run.id, artifactRelPath(path), path);
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

/**
 * The store failing in a way the client did not cause (unreachable after its retries, a timeout, a denied
 * bucket, a full disk): a 503, which MLflow clients retry, and the cause in the server's log.
 */
function storeDown(e: unknown, what: string): MlflowError {
  console.error(`[mlflow] artifact store: ${what}:`, e);
  return new MlflowError(
    'TEMPORARILY_UNAVAILABLE',
    `the artifact store could not ${what} (${(e as Error)?.name ?? 'error'}); retry`,
    503,
    { 'retry-after': '1' },
  );
}

/** A file where a folder is (or a folder where a file is): refused with what is in the way, not a 500 from the disk. */
const clash = (rel: string, what: string) =>
  new MlflowError('RESOURCE_ALREADY_EXISTS', `Cannot upload artifact '${rel}': ${what}`, 409);

/**
 * A path as the store will hold it (`mlflow/<run>/<rel>`, the key files from before blobs have): one the store
 * refuses (a name past 255 bytes, 1024 in all, control or bidi characters) is the client's 400, naming `path`.
 */
function checkRel(runId: string, rel: string, path: string): string {
  try {
    if (rel) checkKey(runArtifactPrefix(runId) + rel);
    return rel;
  } catch (e) {
    if (!(e instanceof BadKeyError)) throw e;
    throw bad(`Invalid artifact path '${shownKey(path)}' (parameter 'path'): ${e.reason}`);
  }
}

/** `<experiment>/<run>/artifacts/<path>` → the run, the path relative to its artifacts ('' for the root), its URI. */
async function artifactTarget(ctx: Ctx, path: string) {
  const m = /^([^/]+)\/([^/]+)\/artifacts(?:\/([\s\S]*))?$/.exec(path.replace(/^\/+/, ''));
  if (!m) throw bad(`Invalid artifact path '${path}': expected <experiment_id>/<run_id>/artifacts/<path>`);
  const run = await runOf(ctx, m[2]!);
  if (run.project_id !== m[1] && m[1] !== '0') throw runNotFound(m[2]!);
  const rel = checkRel(run.id, artifactRelPath(decodePath(m[3] ?? '', decodeURIComponent)), path);
  return { run, rel, uri: `${runInfo(run).artifact_uri}/${rel}` };
}

/** Uploads in flight per team, per handler's options (one handler per process in the app). */
const inFlight = new WeakMap<object, Map<string, number>>();

/**
 * Admits one more of the team's uploads, or refuses it with 429 and Retry-After: each holds its body in memory and
 * a store request, and one team's burst must not take every one of the process's for itself.
 */
function admitUpload(ctx: Ctx): () => void {
  const limit = ctx.opts.artifactUploads?.perTeam ?? DEFAULT_UPLOADS_PER_TEAM;
  let teams = inFlight.get(ctx.opts);
  if (!teams) inFlight.set(ctx.opts, (teams = new Map()));
  const team = ctx.actor.teamId;
  const n = teams.get(team) ?? 0;
  if (n >= limit)
    throw new MlflowError(
      'REQUEST_LIMIT_EXCEEDED',
      `the team has ${n} artifact uploads in progress, the most at once (${limit}); retry when one has finished`,
      429,
      { 'retry-after': '1' },
    );
  teams.set(team, n + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const left = (teams.get(team) ?? 1) - 1;
    if (left > 0) teams.set(team, left);
    else teams.delete(team);
  };
}

/** Removes bytes no row names (a refused upload's, an overwritten one's); a failure only leaves them behind. */
async function dropBlob(store: ArtifactStore, key: string): Promise<void> {
  await store.delete(key).catch((e: unknown) => console.error(`[mlflow] could not remove ${key}:`, e));
}

async function upload(ctx: Ctx, req: Request, path: string): Promise<Response> {
  need(ctx, 'log');
  const { run, rel, uri } = await artifactTarget(ctx, path);
  if (!rel) throw bad('give the artifact a file name');
  const release = admitUpload(ctx);
  try {
    return await storeUpload(ctx, req, run, rel, uri);
  } finally {
    release();
  }
}

async function storeUpload(ctx: Ctx, req: Request, run: MlflowRunRow, rel: string, uri: string): Promise<Response> {
  const max = ctx.opts.maxArtifactBytes ?? DEFAULT_MAX_ARTIFACT;
  const quota = ctx.opts.teamStorageBytes ?? DEFAULT_TEAM_STORAGE;
  const root = `${runInfo(run).artifact_uri}/`;
  const clashOf = async (c: Parameters<typeof artifactPathClash>[0]) => {
    const above = await artifactPathClash(c, run.id, root, rel);
    if (above?.kind === 'file-above') throw clash(rel, `'${above.path}' is a file, so it cannot be a folder`);
    if (above?.kind === 'folder') throw clash(rel, `'${rel}' is a folder of artifacts, so it cannot be a file`);
  };
  await clashOf(ctx.db.pool);
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
  const store = artifactStoreOf(ctx.opts.artifactDir);
  const blob = newBlobKey(run.id, sha256);
  await store.put(blob, body, { sha256 }).catch((e: unknown) => {
    // the key is ours, not the client's: a conflict is a file from before blobs in the way of `.blobs/`
    throw e instanceof KeyConflictError ? clash(rel, e.message) : storeDown(e, 'store the upload');
  });
  let replaced: string | null = null;
  try {
    await withTransaction(ctx.db.pool, async (c) => {
      // checked again under the team's lock: uploads running side by side cannot both fit in the last of it, nor
      // be a file and a folder of one path
      await lockTeamStorage(c, ctx.actor.teamId, {
        timeoutMs: ctx.opts.artifactUploads?.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
      });
      await clashOf(c);
      const now = await teamArtifactBytes(c, ctx.actor.teamId, { runId: run.id, uri });
      if (now + body.length > quota) throw overQuota(quota, now);
      const old = await storedArtifact(c, run.id, uri);
      await saveStoredArtifact(c, run.id, ctx.actor.teamId, {
        name: rel.split('/').pop()!,
        uri,
        sha256,
        bytes: body.length,
        metadata: { source: 'mlflow', path: rel, blob },
      });
      if (samples?.length) await insertSampleRows(c, run.id, samples);
      // a file from before blobs under `.blobs/` could be another row's blob: left in place
      if (old && (typeof old.metadata['blob'] === 'string' || !rel.startsWith('.blobs/')))
        replaced = storedArtifactKey(run.id, rel, old.metadata);
    });
  } catch (e) {
    await dropBlob(store, blob);
    if (isLockTimeout(e))
      throw new MlflowError(
        'TEMPORARILY_UNAVAILABLE',
        "the team's other artifact uploads held its storage lock too long; retry",
        503,
        { 'retry-after': '1' },
      );
    throw e;
  }
  if (replaced && replaced !== blob) await dropBlob(store, replaced);
  return json({});
}

async function download(ctx: Ctx, path: string): Promise<Response> {
  const { run, rel, uri } = await artifactTarget(ctx, path);
  const missing = () => new MlflowError('RESOURCE_DOES_NOT_EXIST', `No artifact at '${path}'`);
  if (!rel) throw missing();
  const store = artifactStoreOf(ctx.opts.artifactDir);
  // what the row recorded is served, or nothing: a file no row names is not an artifact, and bytes that differ
  // from the row's sha256 are refused. Read twice at most: an overwrite between the row and the read drops the
  // blob the row named.
  let got: Awaited<ReturnType<ArtifactStore['get']>> | null = null;
  let key = '';
  for (let attempt = 1; !got; attempt++) {
    const row = await storedArtifact(ctx.db.pool, run.id, uri);
    if (!row) throw missing();
    key = storedArtifactKey(run.id, rel, row.metadata);
    got = await store.get(key, row.sha256 ? { sha256: row.sha256 } : {}).catch((e: unknown) => {
      if (e instanceof ArtifactNotFoundError && attempt < 2) return null;
      if (e instanceof ArtifactNotFoundError) throw missing();
      if (e instanceof ChecksumMismatchError) {
        console.error(`[mlflow] download of ${rel} (${key}) refused:`, e.message);
        throw new MlflowError('INTERNAL_ERROR', `artifact '${rel}' failed its checksum; it was not served`, 500);
      }
      throw storeDown(e, 'read the artifact');
    });
  }
  // bytes that fail their checksum end the stream one chunk short (the client sees a broken download, never a
  // complete wrong file); the server's log says which artifact
  got.body.on('error', (e) => console.error(`[mlflow] download of ${rel} (${key}) stopped:`, e.message));
  return new Response(Readable.toWeb(got.body) as ReadableStream<Uint8Array>, {
    headers: {
      'content-type': 'application/octet-stream',
      // unknown (a server that sent no Content-Length): left out, never a 0 that would cut the body off
      ...(got.info.bytes !== null && { 'content-length': String(got.info.bytes) }),
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
