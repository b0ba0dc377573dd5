/**
 * VFT — vanilla fine-tuning (the paper's step 1): next-token NLL on the reference COT, prompt masked.
 * A typed run config with named presets; the resolved config is saved beside every checkpoint.
 */
import { generateArith, ARITH_DEFAULTS, type ArithDataset, type ArithOptions, type ArithProblem } from '../data/arith';
import { makeBatch, promptOf, type TokenBatch } from '../data/batch';
import { EVAL_DEFAULTS, type EvalOptions, type EvalProblem, type EvalReport } from '../eval';
import { MODEL_PRESETS, resolveConfig, validateModelConfig, type GPTConfig } from '../model/config';
import { GPT } from '../model/gpt';
import { nllLoss } from '../model/logprob';
import { Rng } from '../rng';
import type { PresetName } from '../spec';
import { CharTokenizer } from '../tokenizer';
import { checkpointDirIn, hasCheckpoint, type CheckpointMeta, type SavedCheckpoint } from './checkpoint';
import { OPTIM_DEFAULTS, type OptimConfig } from './optim';
import { RunSession, type TrainHooks } from './session';

export interface VftConfig {
  preset: PresetName;
  seed: number;
  steps: number;
  batchSize: number;
  /** Micro-batches per optimizer step. */
  accumulate: number;
  /** Evaluate on `evalQuestions` validation questions every this many steps. */
  evalEvery: number;
  evalQuestions: number;
  checkpointEvery: number;
  model: Omit<GPTConfig, 'vocabSize'>;
  optim: OptimConfig;
  data: ArithOptions;
  eval: EvalOptions;
}

export const VFT_PRESETS: Record<PresetName, VftConfig> = {
  tiny: {
    preset: 'tiny',
    seed: 1,
    // 700 steps of 20 sequences: ~0.1 s a step on one core of this machine (wasm with our kernels), 40–51% greedy
    // test accuracy in 70–95 s depending on seed and load
    // (batch 32 reached 58%, at 1.6× the time)
    steps: 700,
    batchSize: 20,
    accumulate: 1,
    evalEvery: 175,
    evalQuestions: 100,
    checkpointEvery: 175,
    model: MODEL_PRESETS.tiny,
    optim: { ...OPTIM_DEFAULTS, lr: 6e-3, warmupSteps: 30, totalSteps: 700 },
    data: ARITH_DEFAULTS,
    eval: { ...EVAL_DEFAULTS, assessQuestions: 0 },
  },
  small: {
    preset: 'small',
    seed: 1,
    steps: 3000,
    batchSize: 32,
    accumulate: 1,
    evalEvery: 500,
    evalQuestions: 200,
    checkpointEvery: 500,
    model: MODEL_PRESETS.small,
    optim: { ...OPTIM_DEFAULTS, lr: 1e-3, warmupSteps: 100, totalSteps: 3000 },
    data: ARITH_DEFAULTS,
    eval: { ...EVAL_DEFAULTS, assessQuestions: 0 },
  },
  // for a GPU (the webgpu backend): 64 sequences a step keep its matMuls large enough to use one; the same arith data
  // as tiny and small, so presets compare on it. Not yet trained to the end anywhere: lr and steps are small's scaled
  // to the width (GPT-2's 6e-4 at this size), unmeasured
  medium: {
    preset: 'medium',
    seed: 1,
    steps: 2000,
    batchSize: 64,
    accumulate: 1,
    evalEvery: 500,
    evalQuestions: 200,
    checkpointEvery: 500,
    model: MODEL_PRESETS.medium,
    optim: { ...OPTIM_DEFAULTS, lr: 6e-4, warmupSteps: 200, totalSteps: 2000 },
    data: ARITH_DEFAULTS,
    eval: { ...EVAL_DEFAULTS, assessQuestions: 0 },
  },
};

/**
 * A preset with overrides: `{ steps: 800, 'optim.lr': 1e-3, 'model.nLayer': 3 }`. An unknown key is an error that
 * lists the valid ones; so is a value of the wrong type.
 */
export function resolveVftConfig(preset: string, overrides: Record<string, unknown> = {}): VftConfig {
  const base = VFT_PRESETS[preset as PresetName];
  if (!base) throw new Error(`unknown preset "${preset}"; choose one of ${Object.keys(VFT_PRESETS).join(', ')}`);
  const top: Record<string, unknown> = {};
  const nested: Record<string, Record<string, unknown>> = {};
  for (const [k, v] of Object.entries(overrides)) {
    const dot = k.indexOf('.');
    if (dot < 0) top[k] = v;
    else (nested[k.slice(0, dot)] ??= {})[k.slice(dot + 1)] = v;
  }
  const cfg = resolveConfig(base, top, 'config');
  for (const [section, o] of Object.entries(nested)) {
    if (!['model', 'optim', 'data', 'eval'].includes(section)) {
      throw new Error(`unknown config section "${section}"; valid sections: model, optim, data, eval`);
    }
    (cfg as unknown as Record<string, object>)[section] = resolveConfig(
      (cfg as unknown as Record<string, object>)[section]!,
      o,
      section,
    );
  }
  if (top['steps'] !== undefined && nested['optim']?.['totalSteps'] === undefined)
    cfg.optim = { ...cfg.optim, totalSteps: cfg.steps };
  for (const k of ['steps', 'batchSize', 'accumulate', 'evalEvery', 'checkpointEvery'] as const) {
    if (!Number.isInteger(cfg[k]) || cfg[k] < 1) throw new Error(`${k} must be a positive integer, got ${cfg[k]}`);
  }
  if (!(cfg.optim.lr > 0)) throw new Error(`optim.lr must be > 0, got ${cfg.optim.lr}`);
  // the model's shape is checked here too, so a bad one fails the run before it trains a step (the vocabulary
  // size comes from the data later and is always valid)
  validateModelConfig({ ...cfg.model, vocabSize: 1 });
  return cfg;
}

/** `n` problems drawn with replacement, each with its reference COT: a VFT batch. */
export function referenceBatch(
  tok: CharTokenizer,
  problems: readonly ArithProblem[],
  n: number,
  rng: Rng,
  blockSize: number,
): TokenBatch {
  const ex = Array.from({ length: n }, () => {
    const p = problems[rng.int(0, problems.length - 1)]!;
    return { prompt: promptOf(p.question), response: p.cots[p.ref]! };
  });
  return makeBatch(tok, ex, blockSize);
}

export const toEvalProblem = (p: ArithProblem): EvalProblem => ({
  id: p.id,
  question: p.question,
  answer: p.answer,
  reference: p.cots[p.ref]!,
});

export interface VftHooks extends TrainHooks {
  onEval?: (step: number, report: EvalReport) => void | Promise<void>;
  /** Log per-step timing without evaluating (benchmarks). */
  skipEval?: boolean;
}

export interface VftResult {
  config: VftConfig;
  datasetHash: string;
  steps: number;
  aborted: boolean;
  finalEval: EvalReport | null;
  checkpoint: SavedCheckpoint | null;
  evals: { step: number; report: EvalReport }[];
  seconds: number;
  tokensPerSecond: number;
  numParams: number;
}

/** The VFT config a checkpoint was trained under (an alignment checkpoint keeps its parent's, with `align` beside it). */
export const checkpointVftConfig = (meta: Pick<CheckpointMeta, 'config'>): VftConfig =>
  meta.config as unknown as VftConfig;

/** The dataset a checkpoint was trained on, generated again from its saved config (seeded: the same problems). */
export const checkpointDataset = (meta: Pick<CheckpointMeta, 'config'>): ArithDataset =>
  generateArith(checkpointVftConfig(meta).data);

/** A VFT run in memory: a fresh model from the config's seed, and the arith data it trains on. */
export class VftSession extends RunSession {
  readonly data: ArithDataset;

  constructor(readonly config: VftConfig) {
    const tok = new CharTokenizer();
    const data = generateArith(config.data);
    const init = new Rng(config.seed);
    const model = new GPT({ ...config.model, vocabSize: tok.size }, init);
    super(model, tok, {
      optim: config.optim,
      seed: config.seed,
      rng: init.fork(),
      config: config as unknown as Record<string, unknown>,
      extra: { datasetHash: data.hash },
    });
    this.data = data;
  }

  nextBatch = (rng: Rng): TokenBatch =>
    referenceBatch(this.tok, this.data.train, this.config.batchSize, rng, this.model.config.blockSize);
}

/**
 * Trains (or resumes, when `outDir` holds a checkpoint) a VFT model. Checkpoints go to `checkpointDirIn(outDir)`
 * every `checkpointEvery` steps and at the end; evaluations run every `evalEvery` steps on validation
 * questions, and the final one on the test split.
 */
export async function runVft(config: VftConfig, outDir: string | null, hooks: VftHooks = {}): Promise<VftResult> {
  const s = new VftSession(config);
  try {
    const ckptDir = outDir ? checkpointDirIn(outDir) : null;
    if (ckptDir && hasCheckpoint(ckptDir)) await s.restore(ckptDir);
    const evals: { step: number; report: EvalReport }[] = [];
    const val = s.data.val.slice(0, config.evalQuestions).map(toEvalProblem);
    let checkpoint = null as SavedCheckpoint | null;
    let tokens = 0;
    const t0 = performance.now();
    const res = await s.train({
      signal: hooks.signal,
      beforeCheckpoint: hooks.beforeCheckpoint,
      endStep: config.steps,
      accumulate: config.accumulate,
      nextBatch: s.nextBatch,
      loss: (m, b) => ({ loss: nllLoss(m, b) }),
      onStep: async (info) => {
        tokens += info.tokens;
        await hooks.onStep?.(info);
      },
      evaluation: hooks.skipEval
        ? undefined
        : {
            every: config.evalEvery,
            run: async (step) => {
              if (step === config.steps) return; // the final evaluation below covers it
              const report = await s.evaluate(val, { ...config.eval, assessQuestions: 0 });
              evals.push({ step, report });
              await hooks.onEval?.(step, report);
            },
          },
      checkpoints: ckptDir ? { dir: ckptDir, every: config.checkpointEvery, atEnd: true } : null,
      onCheckpoint: async (step, saved) => {
        checkpoint = saved;
        await hooks.onCheckpoint?.(step, saved);
      },
    });
    const seconds = (performance.now() - t0) / 1000;
    let finalEval: EvalReport | null = null;
    if (!res.aborted && !hooks.skipEval) {
      finalEval = await s.evaluate(s.data.test.map(toEvalProblem), config.eval);
      evals.push({ step: config.steps, report: finalEval });
      await hooks.onEval?.(config.steps, finalEval);
    }
    return {
      config,
      datasetHash: s.data.hash,
      steps: s.step,
      aborted: res.aborted,
      finalEval,
      checkpoint,
      evals,
      seconds,
      tokensPerSecond: tokens / Math.max(seconds, 1e-9),
      numParams: s.model.numParams,
    };
  } finally {
    s.dispose();
  }
}
