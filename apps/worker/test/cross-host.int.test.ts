/**
 * Cross-host resume (docs/architecture.md, "The artifact store"): two worker processes, each with its own
 * AFT_ARTIFACT_DIR, share one S3 store (s3rver, started here) and the real Postgres, Redis and API. The worker that
 * holds a VFT is killed with `kill -9` (its whole process group: the job runs in a forked child) after its first
 * published checkpoint; the other takes the stalled job, pulls that checkpoint and finishes — every (metric, step)
 * equal to an uninterrupted run with the same seed, trained meanwhile by the second worker.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { hasCheckpoint } from '@aft/aft-core';
import { readManifest, type S3Store } from '@aft/storage';
import { startS3rver, type TestS3 } from '@aft/storage/testing';
import { ArtifactStore } from '../src/store';
import { useStack, vftConfig, type Worker } from './stack';

const STEPS = 40;
// the worker tests' tiny VFT (stack.ts), long enough for checkpoints at 10, 20 and 30 steps
const config = vftConfig(STEPS, 17);

let s3: TestS3;
let shared: S3Store;
// s3rver first: it is closed after the stack's workers are stopped (vitest runs after-hooks in reverse)
beforeAll(async () => {
  s3 = await startS3rver();
  shared = await s3.store({ prefix: 'lab' });
});
afterAll(() => s3?.close());
const s = useStack('cross-host', { untilMs: 90_000, everyMs: 100 });
type Host = Worker & { dir: string };

/** A worker process on its own "host": its own directory, the shared bucket, its own process group (to kill). */
async function startHost(concurrency: number): Promise<Host> {
  const dir = await s.tempDir('aft-host-');
  const env = {
    ...(s3.env as Record<string, string>), // only strings: the server's address and credentials
    AFT_CONCURRENCY: String(concurrency),
    AFT_ARTIFACT_DIR: dir,
    AFT_ARTIFACT_URL: `s3://${shared.bucket}/lab`,
    // a killed worker's job is taken back within seconds; long enough that a starved worker still renews its lock
    AFT_LOCK_MS: '8000',
    AFT_BACKEND: 'wasm',
  };
  return Object.assign(s.startWorker(env, { detached: true }), { dir });
}

const runDone = (id: string) => s.untilFinished(`run ${id} to finish`, () => s.runView(id));

/** A run's metric history through the API, `key@step → value`, leaving out what measures the machine, not the model. */
async function history(runId: string): Promise<Map<string, unknown>> {
  const keys = (await s.call<{ key: string }[]>('metrics.keys', { runIds: [runId] }, 'GET'))
    .map((k) => k.key)
    .filter((k) => !k.includes('tokens_per_s') && !k.startsWith('sys/'));
  const series = await s.call<{ key: string; mode: string; steps: number[]; values: unknown[] }[]>(
    'metrics.series',
    { runIds: [runId], keys, buckets: 1000 },
    'GET',
  );
  const out = new Map<string, unknown>();
  for (const s of series) {
    expect(s.mode, s.key).toBe('raw');
    s.steps.forEach((step, i) => out.set(`${s.key}@${step}`, s.values[i]));
  }
  return out;
}

it(
  'a VFT whose host is killed resumes on another host from the S3 checkpoint, ending as an uninterrupted run',
  {
    timeout: 150_000,
  },
  async () => {
    const launch = async (name: string) =>
      (await s.call<{ runId: string }>('runs.launch', { kind: 'vft', project: 'cross-host', name, config })).runId;
    const a = await startHost(1);
    const crashed = await launch('crashed');
    await s.until('host A to take the job', async () => a.log.some((l) => l.includes(`job ${crashed} started`)));
    // host B trains the uninterrupted twin meanwhile, and has a free slot for the crashed run once A is gone
    const b = await startHost(2);
    const clean = await launch('clean');
    const ckKey = `runs/${crashed}/checkpoint`;
    await s.until('host A to publish a checkpoint', () => readManifest(shared, ckKey), 60_000);
    s.kill(a, 'SIGKILL');
    await new Promise((r) => (s.alive(a) ? a.proc.once('exit', r) : r(null)));
    // the job process it forked went with it: nothing of A trains on, or publishes, beside B
    await s.until("host A's job process to be gone", async () => {
      try {
        process.kill(-a.proc.pid!, 0);
        return false;
      } catch {
        return true;
      }
    });
    const published = (await readManifest(shared, ckKey))!.meta['step'] as number;
    expect(published).toBeGreaterThanOrEqual(10);
    expect(published).toBeLessThan(STEPS);
    // what B has of the crashed run can only come from the bucket
    const bStore = new ArtifactStore(b.dir, null);
    expect(hasCheckpoint(bStore.checkpointDir(crashed))).toBe(false);

    const [crashedRun, cleanRun] = await Promise.all([runDone(crashed), runDone(clean)]);
    expect(crashedRun, b.log.slice(-20).join('\n')).toMatchObject({ status: 'succeeded', error: null });
    expect(cleanRun).toMatchObject({ status: 'succeeded', error: null });
    expect(b.log.some((l) => l.includes(`job ${crashed} started`))).toBe(true);
    expect(b.log.some((l) => l.includes(`job ${clean} started`))).toBe(true);
    const resumed = await s.t.db.pool.query<{ step: number }>(
      `SELECT step FROM event WHERE run_id = $1 AND kind = 'resumed'`,
      [crashed],
    );
    expect(resumed.rows.map((r) => r.step)).toEqual([published]);
    expect(hasCheckpoint(bStore.checkpointDir(crashed))).toBe(true);

    const [got, want] = await Promise.all([history(crashed), history(clean)]);
    expect([...got.keys()].filter((k) => k.startsWith('train/loss@'))).toHaveLength(STEPS);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [k, v] of want) expect(got.get(k), k).toBe(v);
  },
);
