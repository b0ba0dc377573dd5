/**
 * A training run in memory — model, tokenizer, AdamW, the training and evaluation RNGs, the step — and the one place
 * that decides what a resumable checkpoint holds, so that a run resumed after a retry, a crash or a shutdown continues
 * exactly as an uninterrupted one (docs/architecture.md, "The job contract"). VFT (`vft.ts`) and alignment
 * (`run-align.ts`) both train through it; the worker only sees their hooks.
 */
import * as tf from '@tensorflow/tfjs';
import { evaluate, type EvalOptions, type EvalProblem, type EvalReport } from '../eval';
import { GPT } from '../model/gpt';
import { Rng, type RngState } from '../rng';
import { CharTokenizer } from '../tokenizer';
import {
  CHECKPOINT_FORMAT,
  loadCheckpoint,
  saveCheckpoint,
  type CheckpointData,
  type SavedCheckpoint,
} from './checkpoint';
import { trainLoop, type LoopOptions, type LoopResult, type StepInfo } from './loop';
import { AdamW, type OptimConfig } from './optim';

/** The evaluation RNG is seeded this far from the run's seed, so evaluating never draws from the training stream. */
export const EVAL_SEED_OFFSET = 7919;

export interface CheckpointHooks {
  /** Before a checkpoint is written: a tracker flushes here, so nothing logged before it can be lost in a crash. */
  beforeCheckpoint?: (step: number) => void | Promise<void>;
  onCheckpoint?: (step: number, saved: SavedCheckpoint) => void | Promise<void>;
}

/** What every trainer tells its caller, VFT or alignment; each adds its own evaluation hooks. */
export interface TrainHooks extends CheckpointHooks {
  onStep?: (s: StepInfo) => void | Promise<void>;
  /** Stops the run between steps; it checkpoints where it stopped. */
  signal?: AbortSignal;
}

export interface SessionOptions {
  optim: OptimConfig;
  /** The run's seed: the evaluation RNG's, and the training RNG's unless `rng` is given. */
  seed: number;
  rng?: Rng;
  /** The resolved run config, saved as every checkpoint's `config`. */
  config: Record<string, unknown>;
  /** Saved at the head of every checkpoint's `extra` (the dataset hash, or an alignment run's parent's). */
  extra: Record<string, unknown>;
  /**
   * Keep the evaluation RNG in checkpoints and continue it on restore. Alignment runs do, so that a resumed run's
   * sampled assessments match an uninterrupted one's; VFT checkpoints never have, and a resumed VFT run keeps
   * evaluating as it always did.
   */
  checkpointEvalRng?: boolean;
}

export interface SessionTrainOptions extends TrainHooks, Pick<LoopOptions, 'nextBatch' | 'loss'> {
  endStep: number;
  accumulate: number;
  /** Runs after every `every` steps and after the last one, before that step's checkpoint. */
  evaluation?: { every: number; run: (step: number) => Promise<void> };
  /** Checkpoint into `dir` every `every` steps (at the last one too when `atEnd`); none without it. */
  checkpoints?: { dir: string; every: number; atEnd: boolean; extra?: () => Record<string, unknown> } | null;
}

export class RunSession {
  readonly optimizer: AdamW;
  rng: Rng;
  evalRng: Rng;
  /** Steps trained: where training continues. */
  step = 0;
  private readonly saved: Pick<SessionOptions, 'config' | 'extra' | 'checkpointEvalRng'>;

  constructor(
    readonly model: GPT,
    readonly tok: CharTokenizer,
    o: SessionOptions,
  ) {
    this.optimizer = new AdamW(o.optim, model.params);
    this.rng = o.rng ?? new Rng(o.seed);
    this.evalRng = new Rng(o.seed + EVAL_SEED_OFFSET);
    this.saved = { config: o.config, extra: o.extra, checkpointEvalRng: o.checkpointEvalRng };
  }

  /** A session on a checkpoint's model and tokenizer, with a fresh optimizer (an alignment run on its parent). */
  static fromCheckpoint(c: CheckpointData, o: SessionOptions): RunSession {
    const tok = new CharTokenizer(c.meta.tokenizer);
    const model = new GPT(c.meta.model, new Rng(0));
    model.setWeights(c.weights);
    return new RunSession(model, tok, o);
  }

  /** Evaluates the model now, drawing any samples from the session's evaluation RNG. */
  evaluate(problems: readonly EvalProblem[], opts: Partial<EvalOptions>): Promise<EvalReport> {
    return evaluate(this.model, this.tok, problems, opts, this.evalRng);
  }

  async save(dir: string, extra: Record<string, unknown> = {}): Promise<SavedCheckpoint> {
    const opt = await this.optimizer.getState();
    const evalRng = this.saved.checkpointEvalRng ? { evalRng: this.evalRng.state() } : {};
    return saveCheckpoint(dir, {
      meta: {
        format: CHECKPOINT_FORMAT,
        step: this.step,
        model: this.model.config,
        tokenizer: this.tok.spec(),
        config: this.saved.config,
        rng: this.rng.state(),
        optimizerStep: opt.t,
        extra: { ...this.saved.extra, backend: tf.getBackend(), ...extra, ...evalRng },
      },
      weights: await this.model.getWeights(),
      m: opt.m,
      v: opt.v,
    });
  }

  /** Continues from a checkpoint (a folder, or one already read): weights, optimizer moments, RNGs and step. */
  async restore(from: string | CheckpointData): Promise<void> {
    const c = typeof from === 'string' ? await loadCheckpoint(from) : from;
    this.model.setWeights(c.weights);
    if (c.m && c.v) this.optimizer.setState({ t: c.meta.optimizerStep, m: c.m, v: c.v });
    this.rng = new Rng(c.meta.rng);
    this.step = c.meta.step;
    const evalRng = c.meta.extra['evalRng'] as RngState | undefined;
    if (this.saved.checkpointEvalRng && evalRng) this.evalRng = new Rng(evalRng);
  }

  /** Saves at the current step, after the caller has flushed what it logged (`beforeCheckpoint`). */
  async checkpoint(dir: string, hooks: CheckpointHooks, extra?: Record<string, unknown>): Promise<SavedCheckpoint> {
    await hooks.beforeCheckpoint?.(this.step);
    return this.save(dir, extra);
  }

  /**
   * Trains from the current step to `endStep`: evaluations, then checkpoints, at their intervals; stopped by the
   * signal, it saves where it stopped (when it got past where it started), so a resumed run continues from there.
   */
  async train(o: SessionTrainOptions): Promise<LoopResult> {
    const start = this.step;
    const ck = o.checkpoints;
    const checkpointNow = async () => {
      const step = this.step;
      await o.onCheckpoint?.(step, await this.checkpoint(ck!.dir, o, ck!.extra?.()));
    };
    const hooks = o.evaluation ? [o.evaluation] : [];
    if (ck) {
      hooks.push({
        every: ck.every,
        run: async (step) => {
          if (step < o.endStep || ck.atEnd) await checkpointNow();
        },
      });
    }
    const res = await trainLoop({
      model: this.model,
      optimizer: this.optimizer,
      rng: this.rng,
      startStep: start,
      endStep: o.endStep,
      accumulate: o.accumulate,
      nextBatch: o.nextBatch,
      loss: o.loss,
      onStep: async (s) => {
        this.step = s.step + 1;
        await o.onStep?.(s);
      },
      hooks,
      signal: o.signal,
    });
    if (res.aborted && ck && this.step > start) await checkpointNow();
    return res;
  }

  dispose(): void {
    this.model.dispose();
    this.optimizer.dispose();
  }
}
