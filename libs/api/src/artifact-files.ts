/** Where the MLflow API keeps a run's uploaded files, their removal with the run, and the headers of downloads. */
import { rm } from 'node:fs/promises';
import { resolve, sep } from 'node:path';

/** The folder of a run's uploaded artifacts under the MLflow artifact directory. */
export function runArtifactDir(artifactDir: string, runId: string): string {
  const base = resolve(artifactDir, 'mlflow');
  const dir = resolve(base, runId);
  // run ids are ours (hex or cuid), but the folder is removed recursively: never anything outside `base`
  if (!dir.startsWith(base + sep) || dir.slice(base.length + 1).includes(sep)) throw new Error(`bad run id ${runId}`);
  return dir;
}

/**
 * Removes a deleted run's uploaded files. Called after the delete has committed (the rows are gone; the files are
 * only bytes now), so a failure here is logged and the delete still answers success: a stray folder wastes disk,
 * a 500 after a committed delete would tell the caller it failed.
 */
export async function removeRunArtifactFiles(artifactDir: string | null | undefined, runId: string): Promise<void> {
  if (!artifactDir) return;
  try {
    await rm(runArtifactDir(artifactDir, runId), { recursive: true, force: true });
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
