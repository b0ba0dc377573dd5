/**
 * What a training job does, thin over aft-core: take up the run (or resume it), train from the last checkpoint in
 * the artifact store, report metrics, samples, artifacts, events and status through libs/tracker (one RunReporter,
 * reporter.ts), and stop between steps when the AbortSignal fires. Runs in the sandboxed processor's own process;
 * tests call it directly. The job's config becomes aft-core's in job-config.ts.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import {
  backendRecord,
  checkpointDataset,
  checkpointVftConfig,
  describeCheckpoint,
  initBackend,
  labelQuestions,
  loadModel,
  NoContrastError,
  NonFiniteLossError,
  Rng,
  runAlign,
  runVft,
  writeLabelledSet,
  type BackendInfo,
} from '@aft/aft-core';
import { PROGRESS_KEYS } from '@aft/contracts';
import {
  alignJobConfig,
  vftJobConfig,
  type AlignJobConfig,
  type SamplingSpec,
  type TrainJobPayload,
  type TrainResult,
  type VftJobConfig,
} from '@aft/queue';
import { attach, TrackerError, Transport, type Run } from '@aft/tracker';
import { PermanentError, SHUTDOWN, ShutdownError } from './errors';
import { alignConfigOf, jobConfig, vftConfigOf } from './job-config';
import { evalMetrics, RunReporter } from './reporter';
import type { ArtifactStore } from './store';

export interface JobContext {
  store: ArtifactStore;
  /** The platform's API; the job reports there with its own run token (`p.runToken`). */
  trackerUrl: string;
  /** The queue the job came from (the GPU queue's jobs train on a GPU), recorded with the run. */
  queue?: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
  /** Told where the job trains (placementParams), for the worker's fleet record (fleet.ts). */
  onPlaced?: (params: Record<string, string>) => void;
}

type Summary = Record<string, number | string | boolean | null>;

/** A parent's sample set is drawn this far from its seed: any worker draws the same set, apart from training's. */
const SAMPLING_SEED_OFFSET = 104_729;
const ASSESS_SEED_OFFSET = 130_363;

/**
 * Draws and labels a VFT parent's sample set if the store lacks it (seeded from the parent's checkpoint: any worker
 * draws the same set), and records it on the parent run when `report` is the parent's. Written under a temporary
 * name, then renamed.
 */
async function ensureSampleSet(
  ctx: JobContext,
  parentRunId: string,
  s: SamplingSpec,
  report: RunReporter | null,
  /** `assess`: the parent's samples on the first test questions, the fixed candidate set every child scores. */
  set: 'train' | 'assess' = 'train',
): Promise<string> {
  const path = set === 'train' ? ctx.store.sampleSet(parentRunId, s) : ctx.store.assessSet(parentRunId, s);
  if (existsSync(path)) return path;
  const { model, tok, meta } = await loadModel(ctx.store.checkpointDir(parentRunId));
  try {
    const data = checkpointDataset(meta);
    const problems = (set === 'train' ? data.train : data.test).slice(0, s.questions);
    ctx.log?.(`sampling k=${s.k} T=${s.temperature} on ${problems.length} questions`);
    const { questions, summary } = await labelQuestions(
      model,
      tok,
      problems,
      { k: s.k, temperature: s.temperature },
      new Rng(checkpointVftConfig(meta).seed + (set === 'train' ? SAMPLING_SEED_OFFSET : ASSESS_SEED_OFFSET)),
    );
    // workers on several hosts may share the store (and a pid): a name of its own for each writer
    const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    await mkdir(dirname(path), { recursive: true });
    await writeLabelledSet(tmp, questions);
    await rename(tmp, path);
    await ctx.store.publish(path);
    if (report) await report.sampleSet(s, meta.step, questions, summary, await ctx.store.describe(path));
    return path;
  } finally {
    model.dispose();
  }
}

async function trainVft(
  p: Extract<TrainJobPayload, { kind: 'vft' }>,
  job: VftJobConfig,
  ctx: JobContext,
  run: Run,
): Promise<TrainResult> {
  const cfg = vftConfigOf(job);
  const report = await RunReporter.start(run, ctx.store, cfg.steps, ctx.log);
  const res = await runVft(cfg, ctx.store.runDir(p.runId), {
    ...report.trainHooks(ctx.signal),
    onEval: (step, r) => report.evaluation(step === cfg.steps ? 'test' : 'val', step, r),
  });
  if (res.aborted) return { runId: p.runId, status: 'canceled', steps: res.steps, summary: {} };
  const summary: Summary = { params: res.numParams, dataset_hash: res.datasetHash, tokens_per_s: res.tokensPerSecond };
  if (res.finalEval) Object.assign(summary, evalMetrics('test', res.finalEval));
  await run.setSummary({ ...summary, [PROGRESS_KEYS.phase]: 'sample' });
  for (const s of job.sampling) {
    if (ctx.signal?.aborted) return { runId: p.runId, status: 'canceled', steps: res.steps, summary };
    await ensureSampleSet(ctx, p.runId, s, report);
  }
  return { runId: p.runId, status: 'succeeded', steps: res.steps, summary };
}

async function trainAlign(
  p: Extract<TrainJobPayload, { kind: 'align' }>,
  job: AlignJobConfig,
  ctx: JobContext,
  run: Run,
): Promise<TrainResult> {
  const cfg = alignConfigOf(job);
  if (!ctx.store.hasCheckpoint(p.parentRunId)) {
    throw new PermanentError(
      `parent run ${p.parentRunId} has no checkpoint in the artifact store (${ctx.store.checkpointDir(p.parentRunId)})`,
    );
  }
  const samples = await ensureSampleSet(ctx, p.parentRunId, job.sampling, null);
  // the same candidate pairs for every run of this parent: assessment accuracy pairs across methods
  const { k, temperature, assessQuestions } = cfg.eval;
  const assessSet =
    assessQuestions > 0 && k > 1
      ? await ensureSampleSet(ctx, p.parentRunId, { k, temperature, questions: assessQuestions }, null, 'assess')
      : undefined;
  const report = await RunReporter.start(run, ctx.store, cfg.steps, ctx.log);
  const stop = new AbortController();
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, stop.signal]) : stop.signal;
  const policy = job.onDegradation;
  let flagged: number | null = null;
  let stopReason: string | null = null;
  let initFrom: string | undefined;
  if (p.initFromRunId) {
    initFrom = ctx.store.lastGoodDir(p.initFromRunId);
    const from = await describeCheckpoint(initFrom);
    if (!from) throw new PermanentError(`run ${p.initFromRunId} has no last good checkpoint to fork from`);
    if (!ctx.store.hasCheckpoint(p.runId))
      await run.logEvent('forked', 0, { fromRun: p.initFromRunId, fromStep: from.meta.step });
  }
  const res = await runAlign(
    ctx.store.checkpointDir(p.parentRunId),
    samples,
    cfg,
    ctx.store.runDir(p.runId),
    {
      ...report.trainHooks(signal),
      onScores: (step, dist) => report.scores(step, dist),
      onEval: async (step, r, d) => {
        await report.evaluation('val', step, r);
        if (!d.degraded || flagged !== null) return;
        flagged = d.onsetStep;
        await report.degradation(d, step, policy);
        await run.setSummary({ degraded: true, degraded_step: d.onsetStep });
        await report.keepLastGood(d.onsetStep ?? step);
        if (policy === 'stop') {
          const evidence = d.evidence
            .map((e) => `${e.signal} ${e.value.toFixed(3)} > ${e.limit.toFixed(3)}`)
            .join(', ');
          stopReason = `degraded at step ${d.onsetStep} (${evidence}); stopped by the sweep's policy`;
          stop.abort(stopReason);
        }
      },
    },
    { initFrom, assessSet },
  );
  if (stopReason) throw new PermanentError(stopReason);
  if (res.aborted) return { runId: p.runId, status: 'canceled', steps: res.evals.at(-1)?.step ?? 0, summary: {} };
  const summary: Summary = {
    ...evalMetrics('test', res.finalEval),
    ...evalMetrics('parent', res.parentEval),
    groups: res.groups,
    degraded: res.degradation.degraded,
    degraded_step: res.degradation.onsetStep,
  };
  report.examples('test', cfg.steps, res.finalEval);
  const assessId = assessSet ? (await ctx.store.describe(assessSet)).sha256.slice(0, 12) : undefined;
  report.outcomes('test', cfg.steps, res.finalEval, assessId);
  if (res.degradation.degraded && flagged === null) await report.degradation(res.degradation, cfg.steps, policy);
  const { steps: trained, activeSteps } = res.boundActivity;
  // only when this process trained every step (a resumed run's earlier steps are not counted here)
  if (cfg.spec.constraint === 'boundary' && trained === cfg.steps && activeSteps === 0) {
    // a boundary no negative ever reached constrained nothing: β is off the scale of this method's score gaps
    await run.logEvent('constraint-inactive', cfg.steps, { beta: cfg.spec.beta, method: cfg.method, steps: trained });
  }
  if (res.checkpoint) await report.checkpoint(cfg.steps, res.checkpoint);
  return { runId: p.runId, status: 'succeeded', steps: cfg.steps, summary };
}

let backend: Promise<BackendInfo> | null = null;

/**
 * Where this process trains, recorded as the run's params when it takes the run up (docs/architecture.md, "GPU
 * jobs"): the backend and its adapter (aft-core's backendRecord), the host and the queue.
 */
export function placementParams(info: BackendInfo, queue: string | undefined): Record<string, string> {
  return { ...backendRecord(info), 'worker.host': hostname(), ...(queue ? { 'worker.queue': queue } : {}) };
}

/**
 * Runs one training job to its end. Resolves with the outcome (succeeded, canceled, or skipped when the run was
 * canceled or finished before the job started); throws `PermanentError` for what retrying cannot fix and anything
 * else for what it may (the tracker unreachable, a full disk). The run's status is set on every path.
 */
export async function runTrainJob(
  p: TrainJobPayload,
  ctx: JobContext,
  attempt: { final: boolean } = { final: true },
): Promise<TrainResult> {
  backend ??= initBackend();
  const info = await backend.catch(async (e: Error) => {
    // e.g. a GPU worker without Vulkan: retried (another worker may have it); the last attempt fails the run, which
    // would otherwise stay queued with no job
    const why = `no backend to train on: ${e.message}`;
    if (attempt.final)
      await new Transport({ url: ctx.trackerUrl, apiKey: p.runToken, retryForMs: 10_000 })
        .call('runs.setStatus', { id: p.runId, status: 'failed', error: why.slice(0, 2000) })
        .catch(() => undefined);
    throw new Error(why, { cause: e });
  });
  const placement = placementParams(info, ctx.queue);
  ctx.onPlaced?.(placement);
  const run = await attach({
    runId: p.runId,
    url: ctx.trackerUrl,
    apiKey: p.runToken,
    backend: info.name,
    params: placement,
    retryForMs: 60_000,
  }).catch((e) => {
    // the run ended (canceled, finished) or was deleted after its job was queued, which revokes its token:
    // nothing to train, and retrying will not bring it back
    if (e instanceof TrackerError && (e.code === 'UNAUTHORIZED' || e.code === 'NOT_FOUND')) return null;
    throw e;
  });
  if (!run) {
    ctx.log?.(`run ${p.runId} is not to be trained: it was canceled, has finished, or no longer exists`);
    return { runId: p.runId, status: 'skipped', steps: 0, summary: {} };
  }
  try {
    // what another host published of this run, its parent and the run it forks (a resume, a parent's samples)
    await ctx.store.pull([p.runId, ...(p.kind === 'align' ? [p.parentRunId, p.initFromRunId] : [])]);
    // the run's config, from its one home (its Postgres row, read by `attach`), parsed once here; a bad one fails
    // the run before it trains a step
    const res =
      p.kind === 'vft'
        ? await trainVft(p, jobConfig(vftJobConfig, run.config), ctx, run)
        : await trainAlign(p, jobConfig(alignJobConfig, run.config), ctx, run);
    if (res.status === 'canceled' && ctx.signal?.reason === SHUTDOWN) {
      await run.flush();
      throw new ShutdownError(
        `stopped at step ${res.steps}: the worker is shutting down; the run resumes from its checkpoint`,
      );
    }
    await run.setSummary({ ...res.summary, [PROGRESS_KEYS.etaSeconds]: null, [PROGRESS_KEYS.phase]: null });
    await run.finish(
      res.status === 'canceled' ? 'canceled' : 'succeeded',
      res.status === 'canceled' ? String(ctx.signal?.reason ?? 'canceled') : undefined,
    );
    return res;
  } catch (e) {
    if (e instanceof ShutdownError) throw e;
    const err =
      e instanceof NonFiniteLossError
        ? new PermanentError(`non-finite loss: ${e.message}`)
        : e instanceof NoContrastError
          ? new PermanentError(e.message)
          : (e as Error);
    // a retry resumes the run from its checkpoint; only the last attempt marks it failed
    if (err instanceof PermanentError || attempt.final) await run.finish('failed', err.message).catch(() => undefined);
    else await run.flush().catch(() => undefined);
    throw err;
  }
}
