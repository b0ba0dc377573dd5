/**
 * The artifact store: a directory (AFT_ARTIFACT_DIR) with one folder per run — `runs/<runId>/checkpoint/` and the
 * VFT parents' labelled sample sets `runs/<runId>/samples-k8-t0.8-q500.jsonl` (and `assess-samples-…` on test questions). Files are written under a temporary
 * name and renamed, so a reader never sees half a file. Shared storage (NFS, a mounted bucket) lets workers on
 * several machines share it.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkpointDirIn, hasCheckpoint } from '@aft/aft-core';
import { sampleSetName, type SamplingSpec } from '@aft/queue';

export class ArtifactStore {
  constructor(readonly root: string) {}

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

  uri(path: string): string {
    return pathToFileURL(path).href;
  }

  /** Size and sha256 of a file, for its artifact record. */
  async describe(path: string): Promise<{ uri: string; bytes: number; sha256: string }> {
    const [buf, st] = await Promise.all([readFile(path), stat(path)]);
    return { uri: this.uri(path), bytes: st.size, sha256: createHash('sha256').update(buf).digest('hex') };
  }
}
