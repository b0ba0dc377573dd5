/**
 * The one adapter between aft-core's trainers and the platform: a run's hooks — steps, evaluations, score
 * distributions, degradation, checkpoints, sample sets — become libs/tracker calls (metrics, samples, events,
 * artifacts, and the progress keys of libs/contracts/src/progress.ts), for the VFT and the alignment path alike.
 * The worker records nothing any other way (docs/architecture.md, "Layers").
 */
import { cp, rm } from 'node:fs/promises';
import {
  describeCheckpoint,
  DIST_QUANTILES,
  type Degradation,
  type EvalReport,
  type LabelledQuestion,
  type LabelSummary,
  type SavedCheckpoint,
  type ScoreDistribution,
  type StepInfo,
  type TrainHooks,
} from '@aft/aft-core';
import {
  ASSESS_RULE,
  OUTCOME_RULES,
  outcomeSplit,
  PAIRED_MAX_OUTCOMES_PER_RUN,
  progressSummary,
  type ProgressPhase,
} from '@aft/contracts';
import type { SamplingSpec } from '@aft/queue';
import type { Run, SampleRow } from '@aft/tracker';
import type { ArtifactStore } from './store';
import { SysSampler } from './sys';

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** An evaluation as metrics: `val/task_accuracy`, `val/ref_perplexity`, … (numbers only; examples stay out). */
export function evalMetrics(prefix: string, r: EvalReport): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(r))
    if (typeof v === 'number' && k !== 'questions') out[`${prefix}/${snake(k)}`] = v;
  // assessment on the candidate set every run of the parent scores: comparable across methods
  if (typeof r.fixedAssessment?.accuracy === 'number')
    out[`${prefix}/fixed_assessment_accuracy`] = r.fixedAssessment.accuracy;
  return out;
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

export class RunReporter {
  private readonly progress: ProgressReporter;
  private readonly sys = new SysSampler();

  private constructor(
    readonly run: Run,
    private readonly store: ArtifactStore,
    total: number,
    /** Training tokens since the run's first step, continued from the checkpoint's step when a run resumes. */
    private tokens: number,
  ) {
    this.progress = new ProgressReporter(run, total);
  }

  /**
   * Takes up a run of `total` steps. A retried or crashed job resumes where the run's last checkpoint in the store
   * left off: that is recorded as a `resumed` event, and the token count continues from the step's.
   */
  static async start(run: Run, store: ArtifactStore, total: number, log?: (line: string) => void) {
    const saved = await describeCheckpoint(store.checkpointDir(run.id));
    const step = saved?.meta.step ?? 0;
    if (saved) {
      log?.(`resuming run ${run.id} from its checkpoint at step ${step}`);
      await run.logEvent('resumed', step, { fromStep: step, pid: process.pid });
    }
    const tokens = step > 0 ? ((await run.valueAt('train/tokens', step)) ?? 0) : 0;
    return new RunReporter(run, store, total, tokens);
  }

  /** The hooks every trainer takes: each step's metrics and progress, a flush before a checkpoint, its artifact after. */
  trainHooks(signal?: AbortSignal): TrainHooks {
    return {
      signal,
      onStep: async (s) => {
        await this.run.log(this.stepMetrics(s), s.step + 1);
        await this.progress.step(s.step + 1);
      },
      beforeCheckpoint: () => this.run.flush(),
      onCheckpoint: (step, saved) => this.checkpoint(step, saved),
    };
  }

  private stepMetrics(s: StepInfo): Record<string, number> {
    const tokensPerS = s.tokens / Math.max(s.ms / 1000, 1e-9);
    return {
      'train/tokens': (this.tokens += s.tokens),
      'train/loss': s.loss,
      'train/lr': s.lr,
      'train/grad_norm': s.gradNorm,
      'train/tokens_per_s': tokensPerS,
      ...Object.fromEntries(Object.entries(s.metrics).map(([k, v]) => [`train/${k}`, v])),
      // the GPU adapter is not here: it is a run param already (backend.adapter, placementParams in train.ts)
      ...this.sys.sample(),
    };
  }

  /**
   * An evaluation at a step: its metrics under `split/` and its greedy generations; a test evaluation also every
   * question's outcome under each rule (libs/contracts/src/outcomes.ts), what a paired comparison reads.
   */
  async evaluation(split: string, step: number, r: EvalReport): Promise<void> {
    await this.run.log(evalMetrics(split, r), step);
    this.examples(split, step, r);
    if (split === 'test') this.outcomes(split, step, r);
  }

  /**
   * One sample row per question and rule, with its correctness; one per fixed candidate pair, ordered or not, named
   * with `assessSet` (the set's digest) so that only runs that scored the same set pair on it.
   */
  outcomes(split: string, step: number, r: EvalReport, assessSet?: string): void {
    const rows: SampleRow[] = [];
    for (const rule of OUTCOME_RULES) {
      for (const q of r.perQuestion) {
        const correct = rule === 'greedy' ? q.correct : q[rule];
        if (correct === undefined) continue; // rerank and majority only for the sampled questions
        rows.push({ step, split: outcomeSplit(split, rule), questionId: q.id, prompt: '', completion: '', correct });
      }
    }
    const pairs = assessSet ? (r.fixedAssessment?.perPair ?? []) : [];
    // more than a paired comparison reads (a big eval.k × assessQuestions): the accuracy metric stands alone
    for (const p of pairs.length <= PAIRED_MAX_OUTCOMES_PER_RUN ? pairs : []) {
      const id = `${assessSet}:${p.id}`;
      rows.push({
        step,
        split: outcomeSplit(split, ASSESS_RULE),
        questionId: id,
        prompt: '',
        completion: '',
        correct: p.ordered,
      });
    }
    this.run.logSamples(rows);
  }

  /** An evaluation's greedy generations, as samples on the run page. */
  examples(split: string, step: number, r: EvalReport): void {
    this.run.logSamples(
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

  /** Where positives and negatives score relative to the boundary, as `dist/…` quantile metrics. */
  async scores(step: number, dist: ScoreDistribution): Promise<void> {
    const m: Record<string, number> = dist.boundary === null ? {} : { 'dist/boundary': dist.boundary };
    DIST_QUANTILES.forEach((q, i) => {
      m[`dist/positive_p${Math.round(q * 100)}`] = dist.positive[i]!;
      m[`dist/negative_p${Math.round(q * 100)}`] = dist.negative[i]!;
    });
    await this.run.log(m, step);
  }

  /** A degradation onset as an event (at `step` when the detector has none), with the sweep's policy. */
  degradation(d: Degradation, step: number, policy: string): Promise<void> {
    return this.run.logEvent('degradation-detected', d.onsetStep ?? step, {
      evidence: d.evidence,
      before: d.before,
      after: d.after,
      parent: d.parent,
      policy,
    });
  }

  /** A checkpoint just saved, recorded as the run's `checkpoint` artifact (the same uri again updates it). */
  async checkpoint(step: number, saved: SavedCheckpoint): Promise<void> {
    await this.checkpointArtifact('checkpoint', step, saved);
  }

  /**
   * When a run degrades, its checkpoint on disk is still the one saved before the onset's evaluation (evaluations run
   * before checkpoints at a step): keep a copy as `checkpoint-good`, the place a fork starts from.
   */
  async keepLastGood(onset: number): Promise<void> {
    const { run, store } = this;
    if (!store.hasCheckpoint(run.id)) return; // degraded at its first evaluation: the parent is the last good state
    const good = store.lastGoodDir(run.id);
    await rm(good, { recursive: true, force: true });
    await cp(store.checkpointDir(run.id), good, { recursive: true });
    const saved = (await describeCheckpoint(good))!;
    await this.checkpointArtifact('last-good', saved.meta.step, saved, { onset });
  }

  private async checkpointArtifact(
    name: string,
    step: number,
    saved: SavedCheckpoint,
    metadata?: Record<string, unknown>,
  ) {
    // to the shared store first, when there is one: the record names that copy
    await this.store.publish(saved.dir);
    await this.run.logArtifact({
      kind: 'checkpoint',
      name,
      uri: this.store.uri(saved.dir),
      sha256: saved.sha256,
      bytes: saved.bytes,
      step,
      ...(metadata && { metadata }),
    });
  }

  /**
   * A VFT parent's labelled sample set, drawn from its checkpoint at `step`: each question's reference COT (so the
   * samples browser can diff candidates against it), every candidate, the set as an artifact and its mix as summary.
   */
  async sampleSet(
    s: SamplingSpec,
    step: number,
    questions: readonly LabelledQuestion[],
    summary: LabelSummary,
    file: { uri: string; bytes: number; sha256: string },
  ): Promise<void> {
    const tag = `k${s.k}-t${s.temperature}`;
    this.run.logSamples(
      questions.map((q) => ({
        step,
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
    this.run.logSamples(
      questions.flatMap((q) =>
        q.candidates.map((c, i) => ({
          step,
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
    await this.run.logArtifact({
      kind: 'sample-set',
      name: `samples-${tag}-q${s.questions}`,
      step,
      ...file,
      metadata: { ...s, ...summary },
    });
    await this.run.setSummary({
      [`samples/${tag}/mixed_fraction`]: summary.mixedFraction,
      [`samples/${tag}/positive_fraction`]: summary.positiveFraction,
    });
  }
}
