/** Where the MLflow API keeps a run's uploaded files, their removal with the run, and the headers of downloads. */
import { randomBytes } from 'node:crypto';
import { FsStore, type ArtifactStore } from '@aft/storage';

/**
 * Where uploaded files are kept: a directory (AFT_MLFLOW_ARTIFACT_DIR) or the shared artifact store
 * (AFT_ARTIFACT_URL; docs/architecture.md, "The artifact store"). Either way a run's files are under `mlflow/<run>/`:
 * each upload's bytes at a key of their own, `mlflow/<run>/.blobs/<sha256>-<random>`, which the artifact row names
 * (`metadata.blob`); files uploaded before that are at `mlflow/<run>/<path>`.
 */
export type ArtifactFiles = string | ArtifactStore;

/** One store per directory, for the process: its sweep on open runs once, and its writers share their locks. */
const stores = new Map<string, FsStore>();

export function artifactStoreOf(where: ArtifactFiles): ArtifactStore {
  if (typeof where !== 'string') return where;
  let s = stores.get(where);
  if (!s) stores.set(where, (s = new FsStore(where)));
  return s;
}

/** The key prefix of a run's uploaded artifacts. */
export function runArtifactPrefix(runId: string): string {
  // run ids are ours (hex or cuid), but everything under the prefix is removed with the run: one plain name only
  if (!/^[A-Za-z0-9_-]+$/.test(runId)) throw new Error(`bad run id ${runId}`);
  return `mlflow/${runId}/`;
}

/**
 * A new key for an upload's bytes: written before the upload is recorded, so no lock or connection is held while
 * they travel, and never one another upload's record may name (an overwrite records a new blob, then drops the old).
 */
export const newBlobKey = (runId: string, sha256: string): string =>
  `${runArtifactPrefix(runId)}.blobs/${sha256}-${randomBytes(8).toString('hex')}`;

/**
 * Where the bytes of the run's artifact at `rel` are, as its row says: the blob it names (only one of this run's),
 * or, for a row from before blobs, the file at its path.
 */
export function storedArtifactKey(runId: string, rel: string, metadata: Record<string, unknown>): string {
  const blob = metadata['blob'];
  const prefix = runArtifactPrefix(runId);
  if (
    typeof blob === 'string' &&
    blob.startsWith(`${prefix}.blobs/`) &&
    /^[0-9a-f]{64}-[0-9a-f]{16}$/.test(blob.slice(prefix.length + 7))
  )
    return blob;
  return prefix + rel;
}

/**
 * Removes a deleted run's uploaded files. Called after the delete has committed (the rows are gone; the files are
 * only bytes now), so a failure here is logged and the delete still answers success: a stray folder wastes disk,
 * a 500 after a committed delete would tell the caller it failed.
 */
export async function removeRunArtifactFiles(where: ArtifactFiles | null | undefined, runId: string): Promise<void> {
  if (!where) return;
  try {
    await artifactStoreOf(where).deletePrefix(runArtifactPrefix(runId));
  } catch (e) {
    console.error(`[artifacts] could not remove the files of deleted run ${runId}:`, e);
  }
}

/**
 * Headers for a file sent to a browser: always a download (`attachment`), never rendered or sniffed — an uploaded
 * .html or .svg opened inline on our origin would run its script with the viewer's session.
 */
export function downloadHeaders(fileName: string): Record<string, string> {
  const ascii = fileName.replace(/[^\x20-\x7e]|["\\]/g, '_') || 'download';
  // RFC 5987's attr-char leaves out ' ( ) * too, which encodeURIComponent keeps
  const utf8 = encodeURIComponent(fileName).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return {
    'content-disposition': `attachment; filename="${ascii}"; filename*=UTF-8''${utf8}`,
    'x-content-type-options': 'nosniff',
  };
}
