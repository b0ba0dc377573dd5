/**
 * `npm run bench:fleet [-- --workers 4 --steps 6 --vft-steps 60]`: a fleet of worker processes, each with its own
 * AFT_ARTIFACT_DIR as if on its own host, sharing one S3 store (s3rver on loopback, behind a byte-counting proxy),
 * trains a 24-run sweep (4 methods × 2 constraints × 3 seeds, the `tiny` preset cut down; 3 VFT parents whose
 * checkpoints and sample sets their children's workers pull from the bucket). Real Postgres and Redis, the API
 * served in this process. Prints JSON: jobs per worker, whether any job trained on two workers at once (per job:
 * the intervals between the workers' "started" and "succeeded" log lines, and BullMQ's attempts), wall time against
 * the ideal (the sum of job times / workers) with what limits it here, and the artifact bytes moved.
 * docs/architecture.md, "The artifact store".
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createTeamWithKey, createTestHandler, serveFetch } from '@aft/api/testing';
import { createTestDatabase } from '@aft/db/testing';
import { createRedis, dropTestQueues, JobProducer, testQueueName, type SweepSpecInput } from '@aft/queue';
import { startS3rver } from '@aft/storage/testing';

const { values: flags } = parseArgs({
  options: {
    workers: { type: 'string', default: '4' },
    steps: { type: 'string', default: '6' },
    'vft-steps': { type: 'string', default: '60' },
  },
});
const int = (name: string, v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${v}"`);
  return n;
};
const WORKERS = int('workers', flags.workers);
const ROOT = resolve(import.meta.dirname, '../..');

/** Bytes through a TCP proxy in front of the S3 server: what the workers sent (up) and received (down). */
function countingProxy(targetPort: number): Promise<{ server: Server; port: number; up: number; down: number }> {
  const c = { server: null as unknown as Server, port: 0, up: 0, down: 0 };
  c.server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    client.on('data', (d) => (c.up += d.length));
    upstream.on('data', (d) => (c.down += d.length));
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  return new Promise((res) =>
    c.server.listen(0, '127.0.0.1', () => {
      c.port = (c.server.address() as { port: number }).port;
      res(c);
    }),
  );
}

/** Busy and total jiffies of the whole machine (every process, this bench's and anyone else's). */
function cpuTimes(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - (f[4] ?? 0), total };
}

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return n;
}

interface JobSpan {
  job: string;
  kind: string;
  worker: number;
  start: number;
  end: number | null;
  outcome: string | null;
}

const t = await createTestDatabase();
const s3 = await startS3rver();
const proxy = await countingProxy(s3.port);
const queue = testQueueName();
const producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), queue);
const api = createTestHandler(t.db, t.url, null, producer);
const server = await serveFetch(api.handler);
const { key } = await createTeamWithKey(t.db, 'fleet');
const bucket = await s3.bucket();
const dirs: string[] = [];
const procs: ChildProcess[] = [];
const spans: JobSpan[] = [];
const t0 = performance.now();
const now = () => performance.now() - t0;

async function call<T>(path: string, input: unknown, method: 'GET' | 'POST' = 'POST'): Promise<T> {
  const r = await api.call(path, input, { key, method });
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${r.json.error?.message}`);
  return r.json.result!.data as T;
}

try {
  for (let w = 0; w < WORKERS; w++) {
    const dir = await mkdtemp(join(tmpdir(), `aft-fleet-${w}-`));
    dirs.push(dir);
    const proc = spawn(process.execPath, ['--import', 'tsx', 'apps/worker/src/main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        ...(s3.env as Record<string, string>), // only strings: the server's address and credentials
        AWS_ENDPOINT_URL: `http://127.0.0.1:${proxy.port}`,
        REDIS_URL: 'redis://127.0.0.1:6379',
        AFT_URL: server.url,
        AFT_QUEUE: queue,
        AFT_CONCURRENCY: '1',
        AFT_ARTIFACT_DIR: dir,
        AFT_ARTIFACT_URL: `s3://${bucket}/fleet`,
        AFT_BACKEND: 'wasm',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    procs.push(proc);
    let rest = '';
    const onData = (d: Buffer) => {
      const lines = (rest + d.toString()).split('\n');
      rest = lines.pop()!;
      for (const l of lines) {
        const started = l.match(/job (\S+) started \((\w+)/);
        if (started)
          spans.push({ job: started[1]!, kind: started[2]!, worker: w, start: now(), end: null, outcome: null });
        const ended = l.match(/job (\S+) (succeeded|failed|canceled|done)/);
        const span = ended && spans.findLast((s) => s.job === ended[1] && s.worker === w && s.end === null);
        if (span) Object.assign(span, { end: now(), outcome: ended![2] });
        if (/error|failed/i.test(l)) process.stderr.write(`worker ${w}: ${l}\n`);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
  }

  const spec: SweepSpecInput = {
    name: 'fleet bench',
    project: 'fleet',
    base: {
      preset: 'tiny',
      seed: 1,
      steps: int('steps', flags.steps),
      k: 4,
      questions: 24,
      vftSteps: int('vft-steps', flags['vft-steps']),
      vftOverrides: {
        batchSize: 8,
        evalEvery: 10,
        evalQuestions: 8,
        checkpointEvery: 5,
        'data.train': 1000,
        'data.val': 16,
        'data.test': 16,
        'eval.maxNewTokens': 32,
      },
      alignOverrides: {
        evalEvery: 3,
        evalQuestions: 8,
        checkpointEvery: 3,
        'eval.assessQuestions': 4,
        'eval.k': 2,
        'eval.maxNewTokens': 32,
        'spec.groupsPerStep': 4,
      },
    },
    axes: { method: ['aft', 'dpo', 'pro', 'rrhf'], constraint: ['none', 'boundary'], seed: [1, 2, 3] },
    maxConcurrent: 24,
  };
  const cpu0 = cpuTimes();
  const launchedAt = now();
  const launched = await call<{ sweepId: string; parents: number; runs: number }>('sweeps.launch', spec);
  type Sweep = { status: string; runs: { id: string; method: string; status: string; error: string | null }[] };
  let sweep: Sweep;
  for (;;) {
    sweep = await call<Sweep>('sweeps.get', { id: launched.sweepId }, 'GET');
    if (sweep.runs.every((r) => ['succeeded', 'failed', 'canceled'].includes(r.status))) break;
    if (procs.some((p) => p.exitCode !== null)) throw new Error('a worker exited');
    await new Promise((r) => setTimeout(r, 500));
  }
  const wallS = (now() - launchedAt) / 1000;
  const cpu1 = cpuTimes();

  const training = spans.filter((s) => s.kind === 'vft' || s.kind === 'align');
  const secs = (s: JobSpan) => ((s.end ?? now()) - s.start) / 1000;
  const byJob = new Map<string, JobSpan[]>();
  for (const s of training) byJob.set(s.job, [...(byJob.get(s.job) ?? []), s]);
  // two spans of one job overlap when the later starts before the earlier ended (on any worker)
  const overlapping = [...byJob].filter(([, ss]) =>
    ss.some((a, i) => ss.some((b, j) => i !== j && a.start <= b.start && b.start < (a.end ?? Infinity))),
  );
  const attempts = await Promise.all(
    [...byJob.keys()].map(async (id) => (await producer.runs.getJob(id))?.attemptsMade ?? null),
  );
  const jobSum = training.reduce((n, s) => n + secs(s), 0);
  const vft = training.filter((s) => s.kind === 'vft');
  const align = training.filter((s) => s.kind === 'align');
  const parentsDone = Math.max(...vft.map((s) => s.end ?? now())) - launchedAt;
  const busy = (cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total);
  const ideal = jobSum / WORKERS;
  // until the parents finish their children cannot start: workers beyond the parents' count wait
  const idleInParents = Math.max(0, WORKERS - vft.length) * (parentsDone / 1000);
  const limits = [
    `${vft.length} VFT parents on ${WORKERS} workers: their children wait for them, so for the first ` +
      `${(parentsDone / 1000).toFixed(0)} s ${Math.max(0, WORKERS - vft.length)} worker(s) sit idle ` +
      `(${idleInParents.toFixed(0)} worker-seconds), and the last children of a chain start late`,
    `${WORKERS} job processes on ${cpus().length} cores (machine CPU ${(busy * 100).toFixed(0)}% busy, load ` +
      `${loadavg()[0]!.toFixed(1)}): each job gets a share of a core, so job times — and the ideal made of them — ` +
      `stretch with the workers; more workers than cores adds no throughput here`,
    'fixed costs per job: a forked process loading TensorFlow, pulling the run and parent folders from the bucket, ' +
      'publishing checkpoints',
  ];
  console.log(
    JSON.stringify(
      {
        workers: WORKERS,
        cores: cpus().length,
        sweep: {
          status: sweep.status,
          runs: launched.runs,
          parents: launched.parents,
          succeeded: sweep.runs.filter((r) => r.status === 'succeeded').length,
          failed: sweep.runs.filter((r) => r.status !== 'succeeded').map((r) => `${r.id}: ${r.error}`),
        },
        jobsPerWorker: Array.from({ length: WORKERS }, (_, w) => {
          const mine = training.filter((s) => s.worker === w);
          return {
            worker: w,
            vft: mine.filter((s) => s.kind === 'vft').length,
            align: mine.filter((s) => s.kind === 'align').length,
            busyS: +mine.reduce((n, s) => n + secs(s), 0).toFixed(1),
          };
        }),
        noJobTwiceAtOnce: {
          ok: overlapping.length === 0,
          jobs: byJob.size,
          startedMoreThanOnce: [...byJob].filter(([, ss]) => ss.length > 1).map(([id]) => id),
          overlapping: overlapping.map(([id]) => id),
          bullmqAttemptsMax: Math.max(...attempts.map((a) => a ?? 0)),
        },
        time: {
          wallS: +wallS.toFixed(1),
          sumOfJobTimesS: +jobSum.toFixed(1),
          idealS: +ideal.toFixed(1),
          wallOverIdeal: +(wallS / ideal).toFixed(2),
          meanJobS: {
            vft: +(vft.reduce((n, s) => n + secs(s), 0) / vft.length).toFixed(1),
            align: +(align.reduce((n, s) => n + secs(s), 0) / align.length).toFixed(1),
          },
          parentsPhaseS: +(parentsDone / 1000).toFixed(1),
          workerUtilisation: +(jobSum / (WORKERS * wallS)).toFixed(2),
          machineCpuBusy: +busy.toFixed(2),
          loadavg1m: +loadavg()[0]!.toFixed(2),
        },
        limits,
        artifacts: {
          bytesUp: proxy.up,
          bytesDown: proxy.down,
          bytesStored: dirBytes(join(s3.directory, bucket)),
        },
      },
      null,
      2,
    ),
  );
  if (sweep.status !== 'succeeded' || overlapping.length) process.exitCode = 1;
} finally {
  await Promise.all(
    procs.map(async (p) => {
      if (p.exitCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      if (p.exitCode === null) p.kill('SIGKILL');
    }),
  );
  await dropTestQueues(producer).catch(() => undefined);
  await server.close();
  await api.notifier.close();
  await t.drop();
  proxy.server.close();
  await s3.close();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}
