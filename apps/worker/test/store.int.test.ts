/**
 * The worker's artifacts in a shared S3 store (s3rver, started here), between two "hosts" — two working
 * directories: a checkpoint published by one is fetched whole by the other, only when newer than its own; a
 * corrupt one is refused and leaves the local copy alone; sample sets travel once. And a training job stopped on
 * one host resumes on the other from the checkpoint it published, the records naming the s3:// copy.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CHECKPOINT_FORMAT,
  describeCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
  type CheckpointData,
} from '@aft/aft-core';
import { createTeamWithKey, createTestHandler, serveFetch } from '@aft/api/testing';
import { createQueuedRuns, createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { ChecksumMismatchError, type S3Store } from '@aft/storage';
import { startS3rver, type TestS3 } from '@aft/storage/testing';
import { ShutdownError, SHUTDOWN } from '../src/errors';
import { ArtifactStore } from '../src/store';
import { runTrainJob } from '../src/train';

let s3: TestS3;
const dirs: string[] = [];
const newDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'aft-host-'));
  dirs.push(d);
  return d;
};

beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(async () => {
  await s3?.close();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Two hosts with their own directories and one shared store. */
async function hosts(): Promise<{ a: ArtifactStore; b: ArtifactStore; shared: S3Store }> {
  const shared = await s3.store({ prefix: 'lab' });
  return { a: new ArtifactStore(await newDir(), shared), b: new ArtifactStore(await newDir(), shared), shared };
}

function checkpoint(step: number): CheckpointData {
  const w = new Float32Array(1000).map((_, i) => step + i / 1000);
  return {
    meta: {
      format: CHECKPOINT_FORMAT,
      step,
      model: {} as CheckpointData['meta']['model'],
      tokenizer: {} as CheckpointData['meta']['tokenizer'],
      config: {},
      rng: {} as CheckpointData['meta']['rng'],
      optimizerStep: step,
      extra: {},
    },
    weights: { w },
    m: { w: w.map((x) => x / 2) },
    v: { w: w.map((x) => x / 4) },
  };
}

const stepOf = async (dir: string) => (await describeCheckpoint(dir))?.meta.step ?? null;

describe('checkpoints between hosts', () => {
  it('a published checkpoint is fetched whole by another host, and only when newer than its own', async () => {
    const { a, b, shared } = await hosts();
    const run = `r${randomBytes(4).toString('hex')}`;
    await saveCheckpoint(a.checkpointDir(run), checkpoint(10));
    await a.publish(a.checkpointDir(run));
    expect(a.uri(a.checkpointDir(run))).toBe(`s3://${shared.bucket}/lab/runs/${run}/checkpoint`);

    await b.pull([run, null, undefined]);
    expect(await stepOf(b.checkpointDir(run))).toBe(10);
    const restored = await loadCheckpoint(b.checkpointDir(run)); // checks the tensors' own sha256 too
    expect(restored.weights['w']![999]).toBeCloseTo(10.999, 5);

    await saveCheckpoint(a.checkpointDir(run), checkpoint(20));
    await a.publish(a.checkpointDir(run));
    await b.pull([run]);
    expect(await stepOf(b.checkpointDir(run))).toBe(20);

    // B got further than what is published (its upload had not happened yet): its own is kept
    await saveCheckpoint(b.checkpointDir(run), checkpoint(30));
    await b.pull([run]);
    expect(await stepOf(b.checkpointDir(run))).toBe(30);
    // one version in the bucket, the last
    const versions = new Set((await shared.list(`runs/${run}/checkpoint/.v/`)).map((o) => o.key.split('/')[4]));
    expect(versions.size).toBe(1);
  });

  it('a corrupt published checkpoint is refused, naming it, and the local checkpoint is left as it was', async () => {
    const { a, b, shared } = await hosts();
    const run = `r${randomBytes(4).toString('hex')}`;
    await saveCheckpoint(b.checkpointDir(run), checkpoint(5));
    await saveCheckpoint(a.checkpointDir(run), checkpoint(10));
    await a.publish(a.checkpointDir(run));
    const tensors = (await shared.list(`runs/${run}/checkpoint/.v/`)).find((o) => o.key.endsWith('tensors.bin'))!;
    const file = s3.objectFile(shared.bucket, `lab/${tensors.key}`);
    const bytes = await readFile(file);
    bytes[0] = bytes[0]! ^ 1;
    await writeFile(file, bytes);
    const err = await b.pull([run]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumMismatchError);
    expect(String(err)).toContain(`'runs/${run}/checkpoint/.v/`);
    expect(await stepOf(b.checkpointDir(run))).toBe(5);
    await loadCheckpoint(b.checkpointDir(run));
  });

  it('sample sets travel once; without a shared store nothing moves and records name local files', async () => {
    const { a, b } = await hosts();
    const run = `r${randomBytes(4).toString('hex')}`;
    const spec = { k: 2, temperature: 0.8, questions: 4 };
    const path = a.sampleSet(run, spec);
    await saveCheckpoint(a.checkpointDir(run), checkpoint(1));
    await writeFile(path, '{"id":"q1"}\n');
    await a.publish(path);
    await b.pull([run]);
    expect(await readFile(b.sampleSet(run, spec), 'utf8')).toBe('{"id":"q1"}\n');

    const alone = new ArtifactStore(await newDir(), null);
    await alone.publish(alone.sampleSet(run, spec)); // nothing to publish to: not even read
    await alone.pull([run]);
    expect(await stepOf(alone.checkpointDir(run))).toBeNull();
    expect(alone.uri(alone.checkpointDir(run))).toMatch(/^file:\/\/\//);
  });
});

describe('a training job across hosts', () => {
  let t: TestDatabase;
  let api: ReturnType<typeof createTestHandler>;
  let server: Awaited<ReturnType<typeof serveFetch>>;
  beforeAll(async () => {
    vi.stubEnv('AFT_BACKEND', 'wasm');
    t = await createTestDatabase();
    api = createTestHandler(t.db, t.url);
    server = await serveFetch(api.handler);
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await server?.close();
    await api?.notifier.close();
    await t?.drop();
  });

  it(
    'stopped on host A after its first checkpoint, it resumes on host B from the published one',
    { timeout: 240_000 },
    async () => {
      const { a, b, shared } = await hosts();
      const { team } = await createTeamWithKey(t.db, `hosts-${randomBytes(3).toString('hex')}`);
      const config = {
        preset: 'tiny',
        seed: 5,
        steps: 16,
        overrides: {
          batchSize: 8,
          evalEvery: 16,
          evalQuestions: 4,
          checkpointEvery: 8,
          'data.train': 400,
          'data.val': 8,
          'data.test': 8,
          'eval.maxNewTokens': 16,
        },
        sampling: [],
      };
      const { ids, tokens } = await createQueuedRuns(t.db.pool, team.id, 'hosts', [
        { ref: 'r', name: 'vft', method: 'vft', constraint: 'none', config, configHash: 'x', seed: 5, tags: [] },
      ]);
      const payload = { kind: 'vft' as const, runId: ids.get('r')!, runToken: tokens.get('r')! };
      // host A is shut down as soon as it has published a checkpoint
      const stop = new AbortController();
      const hostA = new (class extends ArtifactStore {
        override async publish(path: string) {
          await super.publish(path);
          if (path.endsWith('checkpoint')) stop.abort(SHUTDOWN);
        }
      })(a.root, shared);
      const first = await runTrainJob(payload, { store: hostA, trackerUrl: server.url, signal: stop.signal }).catch(
        (e: unknown) => e,
      );
      expect(first).toBeInstanceOf(ShutdownError);
      const stoppedAt = (await describeCheckpoint(a.checkpointDir(payload.runId)))!.meta.step;
      expect(stoppedAt).toBeGreaterThanOrEqual(8);

      const done = await runTrainJob(payload, { store: b, trackerUrl: server.url });
      expect(done.status).toBe('succeeded');
      const resumed = await t.db.pool.query<{ step: number }>(
        `SELECT step FROM event WHERE run_id = $1 AND kind = 'resumed'`,
        [payload.runId],
      );
      expect(resumed.rows.map((r) => r.step)).toEqual([stoppedAt]);
      const ck = await t.db.pool.query<{ uri: string; step: number }>(
        `SELECT uri, step FROM artifact WHERE run_id = $1 AND kind = 'checkpoint'`,
        [payload.runId],
      );
      expect(ck.rows).toEqual([{ uri: `s3://${shared.bucket}/lab/runs/${payload.runId}/checkpoint`, step: 16 }]);
      expect((await shared.stat(`runs/${payload.runId}/checkpoint/.manifest.json`))?.bytes).toBeGreaterThan(0);
    },
  );
});
