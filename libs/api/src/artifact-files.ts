/** Where the MLflow API keeps a run's uploaded files, their removal with the run, and the headers of downloads. */
import { FsStore, type ArtifactStore } from '@aft/storage';

/**
 * Where uploaded files are kept: a directory (AFT_MLFLOW_ARTIFACT_DIR) or the shared artifact store
 * (AFT_ARTIFACT_URL; docs/architecture.md, "The artifact store"). Either way a run's files are `mlflow/<run>/<path>`.
 */
export type ArtifactFiles = string | ArtifactStore;

export const artifactStoreOf = (where: ArtifactFiles): ArtifactStore =>
  typeof where === 'string' ? new FsStore(where) : where;

/** The key prefix of a run's uploaded artifacts. */
export function runArtifactPrefix(runId: string): string {
  // run ids are ours (hex or cuid), but everything under the prefix is removed with the run: one plain name only
  if (!/^[A-Za-z0-9_-]+$/.test(runId)) throw new Error(`bad run id ${runId}`);
  return `mlflow/${runId}/`;
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
