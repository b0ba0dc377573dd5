/**
 * The worker's artifacts. A working directory on this machine (AFT_ARTIFACT_DIR) holds one folder per run —
 * `runs/<runId>/checkpoint/` and the VFT parents' labelled sample sets `runs/<runId>/samples-k8-t0.8-q500.jsonl`
 * (and `assess-samples-…` on test questions) — where aft-core reads and writes; files are written under a temporary
 * name and renamed, so a reader never sees half a file.
 *
 * When AFT_ARTIFACT_URL names a shared store (S3, or a mounted folder: libs/storage, docs/architecture.md, "The
 * artifact store"), what is written here is published there (`publish`: a checkpoint as one versioned folder, after
 * each save; a sample set once drawn), and a job first fetches its runs' folders from there (`pull`), so a run that
 * stopped on one host resumes on another from its last published checkpoint. Artifact records then name the shared
 * copy (`s3://…`). Without it the directory is the store, as on one machine.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkpointDirIn, describeCheckpoint, hasCheckpoint } from '@aft/aft-core';
import { sampleSetName, type SamplingSpec } from '@aft/queue';
import {
  artifactStoreFromEnv,
  downloadFile,
  getTree,
  MANIFEST,
  putTree,
  readManifest,
  type ArtifactStore as SharedStore,
} from '@aft/storage';
import { loadEnv } from './env';

/** aft-core's checkpoint metadata: renamed into place last, its presence is what makes a checkpoint whole. */
const CHECKPOINT_META = 'checkpoint.json';

export class ArtifactStore {
  /** The shared store, or null when this machine's directory is the only one. */
  readonly remote: SharedStore | null;

  /** `remote` left out: the one AFT_ARTIFACT_URL names (read through env.ts), if any. */
  constructor(
    readonly root: string,
    remote?: SharedStore | null,
  ) {
    this.remote = remote === undefined ? artifactStoreFromEnv(loadEnv()) : remote;
  }

  runDir(runId: string): string {
    return join(this.root, 'runs', runId);
  }

  /** Where a run's trainer, writing to `runDir`, keeps its checkpoint (aft-core owns the layout inside). */
  checkpointDir(runId: string): string {
    return checkpointDirIn(this.runDir(runId));
  }

  /** A degraded run's checkpoint from before the onset: where a fork starts. */
  lastGoodDir(runId: string): string {
    return join(this.runDir(runId), 'checkpoint-good');
  }

  hasCheckpoint(runId: string): boolean {
    return hasCheckpoint(this.checkpointDir(runId));
  }

  sampleSet(runId: string, s: SamplingSpec): string {
    return join(this.runDir(runId), sampleSetName(s));
  }

  /** A VFT parent's fixed candidate set on test questions (its children's assessment outcomes pair on it). */
  assessSet(runId: string, s: SamplingSpec): string {
    return join(this.runDir(runId), `assess-${sampleSetName(s)}`);
  }

  /** A path under the directory as a store key (`runs/<id>/…`), the same on every host. */
  keyOf(path: string): string {
    const rel = relative(this.root, path);
    if (!rel || rel.startsWith('..') || isAbsolute(rel)) throw new Error(`${path} is not under ${this.root}`);
    return rel.split(sep).join('/');
  }

  /** Where an artifact record points: the shared copy when there is a shared store, else the file here. */
  uri(path: string): string {
    return this.remote ? this.remote.uri(this.keyOf(path)) : pathToFileURL(path).href;
  }

  /** Size and sha256 of a file, for its artifact record. */
  async describe(path: string): Promise<{ uri: string; bytes: number; sha256: string }> {
    const [buf, st] = await Promise.all([readFile(path), stat(path)]);
    return { uri: this.uri(path), bytes: st.size, sha256: createHash('sha256').update(buf).digest('hex') };
  }

  /**
   * Publishes a file or a checkpoint folder just written here to the shared store (nothing without one). A
   * checkpoint goes as one folder whose manifest carries its step: readers get all of it or none, and `pull` can
   * tell which copy is newer without fetching either.
   */
  async publish(path: string): Promise<void> {
    if (!this.remote) return;
    const key = this.keyOf(path);
    if (!(await stat(path)).isDirectory()) {
      await this.remote.put(key, { file: path });
      return;
    }
    const saved = await describeCheckpoint(path);
    await putTree(this.remote, key, path, {
      last: [CHECKPOINT_META],
      meta: { step: saved?.meta.step ?? null, sha256: saved?.sha256 ?? null },
    });
  }

  /**
   * Fetches from the shared store what a job needs of these runs and this machine lacks: each published
   * checkpoint folder that is newer than the one here (by step), and each file not here (sample sets do not
   * change once drawn). A run another host trained then resumes here where that host's last publish left it.
   */
  async pull(runIds: readonly (string | null | undefined)[]): Promise<void> {
    if (!this.remote) return;
    for (const id of new Set(runIds)) if (id) await this.pullRun(this.remote, id);
  }

  private async pullRun(remote: SharedStore, runId: string): Promise<void> {
    const prefix = this.keyOf(this.runDir(runId)) + '/';
    for (const o of await remote.list(prefix)) {
      const rest = o.key.slice(prefix.length);
      const local = join(this.runDir(runId), ...rest.split('/'));
      if (rest.endsWith(`/${MANIFEST}`) && !rest.slice(0, -MANIFEST.length - 1).includes('/')) {
        const folder = o.key.slice(0, -MANIFEST.length - 1);
        const dir = local.slice(0, -MANIFEST.length - 1);
        const [theirs, ours] = await Promise.all([readManifest(remote, folder), describeCheckpoint(dir)]);
        const step = theirs?.meta['step'];
        if (ours && typeof step === 'number' && ours.meta.step >= step) continue;
        await getTree(remote, folder, dir);
      } else if (!rest.includes('/') && !existsSync(local)) {
        await downloadFile(remote, o.key, local);
      }
    }
  }
}
