/**
 * The artifact store: a directory (AFT_ARTIFACT_DIR) with one folder per run — `runs/<runId>/checkpoint/` and the
 * VFT parents' labelled sample sets `runs/<runId>/samples-k8-t0.8-q500.jsonl`. Files are written under a temporary
 * name and renamed, so a reader never sees half a file. Shared storage (NFS, a mounted bucket) lets workers on
 * several machines share it.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sampleSetName, type SamplingSpec } from '@aft/queue';

export class ArtifactStore {
  constructor(readonly root: string) {}

  runDir(runId: string): string {
    return join(this.root, 'runs', runId);
  }

  checkpointDir(runId: string): string {
    return join(this.runDir(runId), 'checkpoint');
  }

  /** A degraded run's checkpoint from before the onset: where a fork starts. */
  lastGoodDir(runId: string): string {
    return join(this.runDir(runId), 'checkpoint-good');
  }

  hasCheckpoint(runId: string): boolean {
    return existsSync(join(this.checkpointDir(runId), 'checkpoint.json'));
  }

  /** A checkpoint's metadata (step, config, the tensors' sha256), or null when the folder holds none. */
  async checkpointMeta(dir: string): Promise<{ step: number; sha256: string; config: Record<string, unknown> } | null> {
    const file = join(dir, 'checkpoint.json');
    return existsSync(file) ? JSON.parse(await readFile(file, 'utf8')) : null;
  }

  sampleSet(runId: string, s: SamplingSpec): string {
    return join(this.runDir(runId), sampleSetName(s));
  }

  uri(path: string): string {
    return pathToFileURL(path).href;
  }

  /** Size and sha256 of a file, for its artifact record. */
  async describe(path: string): Promise<{ uri: string; bytes: number; sha256: string }> {
    const [buf, st] = await Promise.all([readFile(path), stat(path)]);
    return { uri: this.uri(path), bytes: st.size, sha256: createHash('sha256').update(buf).digest('hex') };
  }
}
