/**
 * What a training job does, thin over aft-core: take up the run (or resume it), train from the last checkpoint in
 * the artifact store, report metrics, samples, artifacts, events and status through libs/tracker, and stop between
 * steps when the AbortSignal fires. Runs in the sandboxed processor's own process; tests call it directly.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  DIST_QUANTILES,
  generateArith,
  initBackend,
  labelQuestions,
  loadModel,
  NonFiniteLossError,
  resolveAlignConfig,
  resolveVftConfig,
  Rng,
  runAlign,
  runVft,
  writeLabelledSet,
  type AlignConfig,
  type EvalReport,
  type SavedCheckpoint,
  type StepInfo,
  type VftConfig,
} from '@aft/aft-core';
import { PROGRESS_KEYS, progressSummary, type ProgressPhase } from '@aft/contracts';
import type { SamplingSpec, TrainJobPayload, TrainResult } from '@aft/queue';
import { attach, TrackerError, type Run } from '@aft/tracker';
import { PermanentError, SHUTDOWN, ShutdownError } from './errors';
import type { ArtifactStore } from './store';

export interface JobContext {
  store: ArtifactStore;
  /** The platform's API; the job reports there with its own run token (`p.runToken`). */
  trackerUrl: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

type Summary = Record<string, number | string | boolean | null>;

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** An evaluation as metrics: `val/task_accuracy`, `val/ref_perplexity`, … (numbers only; examples stay out). */
export function evalMetrics(prefix: string, r: EvalReport): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(r))
    if (typeof v === 'number' && k !== 'questions') out[`${prefix}/${snake(k)}`] = v;
  return out;
}

/** Training tokens since the run's first step, continued from the checkpoint's count when a run resumes. */
class TokenCount {
  private total = 0;
  static async resume(run: Run, fromStep: number): Promise<TokenCount> {
    const c = new TokenCount();
    if (fromStep > 0) c.total = (await run.valueAt('train/tokens', fromStep)) ?? 0;
    return c;
  }
  add(n: number): number {
    return (this.total += n);
  }
}

function stepMetrics(s: StepInfo, tokens: TokenCount): Record<string, number> {
  return {
    'train/tokens': tokens.add(s.tokens),
    'train/loss': s.loss,
    'train/lr': s.lr,
    'train/grad_norm': s.gradNorm,
    'train/tokens_per_s': s.tokens / Math.max(s.ms / 1000, 1e-9),
    ...Object.fromEntries(Object.entries(s.metrics).map(([k, v]) => [`train/${k}`, v])),
  };
}

/** An evaluation's greedy generations, as samples on the run page. */
function logExamples(run: Run, split: string, step: number, r: EvalReport) {
  run.logSamples(
    r.examples.map((e, i) => ({
      step,
      split,
      questionId: e.id,
      sampleIdx: i,
      prompt: e.question,
      completion: e.output,
      correct: e.correct,
    })),
  );
}

/**
 * Progress for the run page and the sweep grid, in the run's summary (libs/contracts progress.ts): step, total and
 * an ETA from the recent pace, at most every 2 s.
 */
class ProgressReporter {
  private last = 0;
  private readonly t0 = performance.now();
  private firstStep: number | null = null;

  constructor(
    private readonly run: Run,
    private readonly total: number,
  ) {}

  async step(step: number, phase: ProgressPhase = 'train') {
    this.firstStep ??= step;
    const now = performance.now();
    if (now - this.last < 2_000 && step < this.total) return;
    this.last = now;
    const done = step - this.firstStep + 1;
    const eta = done > 0 ? ((now - this.t0) / 1000 / done) * (this.total - step) : null;
    await this.run.setSummary(
      progressSummary({ step, total: this.total, etaSeconds: eta === null ? null : Math.round(eta), phase }),
    );
  }
}

function permanent<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new PermanentError(`${what}: ${(e as Error).message}`);
  }
}

export function vftConfigOf(p: Extract<TrainJobPayload, { kind: 'vft' }>['config']): VftConfig {
  return permanent('bad VFT config', () =>
    resolveVftConfig(p.preset, {
      ...p.overrides,
      seed: p.seed,
      ...(p.steps ? { steps: p.steps, 'optim.totalSteps': p.steps } : {}),
    }),
  );
}

export function alignConfigOf(p: Extract<TrainJobPayload, { kind: 'align' }>['config']): AlignConfig {
  return permanent('bad alignment config', () =>
    resolveAlignConfig(
      {
        method: p.method,
        constraint: p.constraint,
        beta: p.beta,
        dpoBeta: p.dpoBeta,
        wNll: p.wNll,
        feedback: p.feedback,
        steps: p.steps,
        seed: p.seed,
        lr: p.lr,
      },
      p.overrides,
    ),
  );
}

/**
 * Draws and labels a VFT parent's sample set if the store lacks it (seeded: any worker draws the same set), and
 * records it on the parent run. Written under a temporary name, then renamed.
 */
async function ensureSampleSet(
  ctx: JobContext,
  parentRunId: string,
  s: SamplingSpec,
  run: Run | null,
  seed: number,
): Promise<string> {
  const path = ctx.store.sampleSet(parentRunId, s);
  if (existsSync(path)) return path;
  const { model, tok, meta } = await loadModel(ctx.store.checkpointDir(parentRunId));
  try {
    const data = generateArith((meta.config as unknown as VftConfig).data);
    const problems = data.train.slice(0, s.questions);
    ctx.log?.(`sampling k=${s.k} T=${s.temperature} on ${problems.length} questions`);
    const { questions, summary } = await labelQuestions(
      model,
      tok,
      problems,
      { k: s.k, temperature: s.temperature },
      new Rng(seed + 104_729),
    );
    const tmp = `${path}.${process.pid}.tmp`;
    await mkdir(dirname(path), { recursive: true });
    await writeLabelledSet(tmp, questions);
    await rename(tmp, path);
    if (run) {
      const tag = `k${s.k}-t${s.temperature}`;
      // the reference COT of each question, so the samples browser can diff candidates against it
      run.logSamples(
        questions.map((q) => ({
          step: meta.step,
          split: 'reference',
          questionId: q.id,
          sampleIdx: 0,
          prompt: q.question,
          completion: q.reference,
          gold: q.answer,
          correct: true,
          rank: 0,
        })),
      );
      run.logSamples(
        questions.flatMap((q) =>
          q.candidates.map((c, i) => ({
            step: meta.step,
            split: `samples-${tag}`,
            questionId: q.id,
            sampleIdx: i,
            prompt: q.question,
            completion: c.text,
            gold: q.answer,
            correct: c.correct,
            score: c.score,
            rank: c.rank,
          })),
        ),
      );
      await run.logArtifact({
        kind: 'sample-set',
        name: `samples-${tag}-q${s.questions}`,
        step: meta.step,
        ...(await ctx.store.describe(path)),
        metadata: { ...s, ...summary },
      });
      await run.setSummary({
        [`samples/${tag}/mixed_fraction`]: summary.mixedFraction,
        [`samples/${tag}/positive_fraction`]: summary.positiveFraction,
      });
    }
    return path;
  } finally {
    model.dispose();
  }
}

/** A checkpoint just saved, recorded as the run's `checkpoint` artifact (the same uri again updates it). */
async function logCheckpoint(ctx: JobContext, run: Run, step: number, saved: SavedCheckpoint): Promise<void> {
  await run.logArtifact({
    kind: 'checkpoint',
    name: 'checkpoint',
    uri: ctx.store.uri(saved.dir),
    sha256: saved.sha256,
    bytes: saved.bytes,
    step,
  });
}

/**
 * When a run degrades, its checkpoint on disk is still the one saved before the onset's evaluation (evaluations run
 * before checkpoints at a step): keep a copy as `checkpoint-good`, the place a fork starts from.
 */
async function keepLastGood(ctx: JobContext, run: Run, onset: number): Promise<void> {
  if (!ctx.store.hasCheckpoint(run.id)) return; // degraded at its first evaluation: the parent is the last good state
  const good = ctx.store.lastGoodDir(run.id);
  await rm(good, { recursive: true, force: true });
  await cp(ctx.store.checkpointDir(run.id), good, { recursive: true });
  const meta = (await ctx.store.checkpointMeta(good))!;
  const { size } = await stat(join(good, 'tensors.bin'));
  await run.logArtifact({
    kind: 'checkpoint',
    name: 'last-good',
    uri: ctx.store.uri(good),
    sha256: meta.sha256,
    bytes: size,
    step: meta.step,
    metadata: { onset },
  });
}

/** The step of the run's last checkpoint in the store (0 if none): where a retried or crashed job resumes. */
async function resumeStep(ctx: JobContext, run: Run): Promise<number> {
  const meta = await ctx.store.checkpointMeta(ctx.store.checkpointDir(run.id));
  if (!meta) return 0;
  const { step } = meta;
  ctx.log?.(`resuming run ${run.id} from its checkpoint at step ${step}`);
  await run.logEvent('resumed', step, { fromStep: step, pid: process.pid });
  return step;
}

async function trainVft(p: Extract<TrainJobPayload, { kind: 'vft' }>, ctx: JobContext, run: Run): Promise<TrainResult> {
  const cfg = vftConfigOf(p.config);
  const tokens = await TokenCount.resume(run, await resumeStep(ctx, run));
  const progress = new ProgressReporter(run, cfg.steps);
  const res = await runVft(cfg, ctx.store.runDir(p.runId), {
    signal: ctx.signal,
    onStep: async (s) => {
      const m = stepMetrics(s, tokens);
      await run.log(m, s.step + 1);
      await progress.step(s.step + 1);
    },
    onEval: async (step, r) => {
      const split = step === cfg.steps ? 'test' : 'val';
      await run.log(evalMetrics(split, r), step);
      logExamples(run, split, step, r);
    },
    beforeCheckpoint: () => run.flush(),
    onCheckpoint: (step, saved) => logCheckpoint(ctx, run, step, saved),
  });
  if (res.aborted) return { runId: p.runId, status: 'canceled', steps: res.steps, summary: {} };
  const summary: Summary = { params: res.numParams, dataset_hash: res.datasetHash, tokens_per_s: res.tokensPerSecond };
  if (res.finalEval) Object.assign(summary, evalMetrics('test', res.finalEval));
  await run.setSummary({ ...summary, [PROGRESS_KEYS.phase]: 'sample' });
  for (const s of p.config.sampling) {
    if (ctx.signal?.aborted) return { runId: p.runId, status: 'canceled', steps: res.steps, summary };
    await ensureSampleSet(ctx, p.runId, s, run, cfg.seed);
  }
  return { runId: p.runId, status: 'succeeded', steps: res.steps, summary };
}

async function trainAlign(
  p: Extract<TrainJobPayload, { kind: 'align' }>,
  ctx: JobContext,
  run: Run,
): Promise<TrainResult> {
  const cfg = alignConfigOf(p.config);
  if (!ctx.store.hasCheckpoint(p.parentRunId)) {
    throw new PermanentError(
      `parent run ${p.parentRunId} has no checkpoint in the artifact store (${ctx.store.checkpointDir(p.parentRunId)})`,
    );
  }
  const parentSeed = (
    (await ctx.store.checkpointMeta(ctx.store.checkpointDir(p.parentRunId)))!.config as unknown as VftConfig
  ).seed;
  const samples = await ensureSampleSet(ctx, p.parentRunId, p.config.sampling, null, parentSeed);
  const tokens = await TokenCount.resume(run, await resumeStep(ctx, run));
  const stop = new AbortController();
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, stop.signal]) : stop.signal;
  const progress = new ProgressReporter(run, cfg.steps);
  let flagged: number | null = null;
  let stopReason: string | null = null;
  let initFrom: string | undefined;
  if (p.initFromRunId) {
    initFrom = ctx.store.lastGoodDir(p.initFromRunId);
    const from = await ctx.store.checkpointMeta(initFrom);
    if (!from) throw new PermanentError(`run ${p.initFromRunId} has no last good checkpoint to fork from`);
    if (!ctx.store.hasCheckpoint(p.runId))
      await run.logEvent('forked', 0, { fromRun: p.initFromRunId, fromStep: from.step });
  }
  const res = await runAlign(
    ctx.store.checkpointDir(p.parentRunId),
    samples,
    cfg,
    ctx.store.runDir(p.runId),
    {
      signal,
      onStep: async (s) => {
        const m = stepMetrics(s, tokens);
        await run.log(m, s.step + 1);
        await progress.step(s.step + 1);
      },
      onScores: async (step, dist) => {
        const m: Record<string, number> = { 'dist/boundary': dist.boundary };
        DIST_QUANTILES.forEach((q, i) => {
          m[`dist/positive_p${Math.round(q * 100)}`] = dist.positive[i]!;
          m[`dist/negative_p${Math.round(q * 100)}`] = dist.negative[i]!;
        });
        await run.log(m, step);
      },
      onEval: async (step, r, d) => {
        await run.log(evalMetrics('val', r), step);
        logExamples(run, 'val', step, r);
        if (!d.degraded || flagged !== null) return;
        flagged = d.onsetStep;
        const evidence = d.evidence.map((e) => `${e.signal} ${e.value.toFixed(3)} > ${e.limit.toFixed(3)}`).join(', ');
        await run.logEvent('degradation-detected', d.onsetStep ?? step, {
          evidence: d.evidence,
          before: d.before,
          after: d.after,
          parent: d.parent,
          policy: p.config.onDegradation,
        });
        await run.setSummary({ degraded: true, degraded_step: d.onsetStep });
        await keepLastGood(ctx, run, d.onsetStep ?? step);
        if (p.config.onDegradation === 'stop') {
          stopReason = `degraded at step ${d.onsetStep} (${evidence}); stopped by the sweep's policy`;
          stop.abort(stopReason);
        }
      },
      beforeCheckpoint: () => run.flush(),
      onCheckpoint: (step, saved) => logCheckpoint(ctx, run, step, saved),
    },
    { initFrom },
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
  logExamples(run, 'test', cfg.steps, res.finalEval);
  if (res.degradation.degraded && flagged === null) {
    await run.logEvent('degradation-detected', res.degradation.onsetStep ?? cfg.steps, {
      evidence: res.degradation.evidence,
      before: res.degradation.before,
      after: res.degradation.after,
      parent: res.degradation.parent,
      policy: p.config.onDegradation,
    });
  }
  if (res.checkpoint) await logCheckpoint(ctx, run, cfg.steps, res.checkpoint);
  return { runId: p.runId, status: 'succeeded', steps: cfg.steps, summary };
}

let backendName: Promise<string> | null = null;

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
  backendName ??= initBackend().then((b) => b.name);
  const run = await attach({
    runId: p.runId,
    url: ctx.trackerUrl,
    apiKey: p.runToken,
    backend: await backendName,
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
    // a bad config fails the run before it trains a step
    if (p.kind === 'vft') vftConfigOf(p.config);
    else alignConfigOf(p.config);
    const res = p.kind === 'vft' ? await trainVft(p, ctx, run) : await trainAlign(p, ctx, run);
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
    const err = e instanceof NonFiniteLossError ? new PermanentError(`non-finite loss: ${e.message}`) : (e as Error);
    // a retry resumes the run from its checkpoint; only the last attempt marks it failed
    if (err instanceof PermanentError || attempt.final) await run.finish('failed', err.message).catch(() => undefined);
    else await run.flush().catch(() => undefined);
    throw err;
  }
}
