/**
 * An alignment run end to end: restore the VFT parent, read its labelled sample set, train with
 * L = w_nll · NLL + L_method, evaluate periodically, run the degradation detector against the parent, and save a
 * checkpoint. Continued VFT (method `vft`) trains the parent further on NLL alone, as the control.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { generateArith } from '../data/arith';
import { detectDegradation, DEGRADATION_DEFAULTS, type Degradation, type DegradationThresholds } from '../degradation';
import { evaluate, EVAL_DEFAULTS, type EvalOptions, type EvalReport } from '../eval';
import type { LabelledQuestion } from '../label';
import { loadCheckpoint, saveCheckpoint, type SavedCheckpoint } from './checkpoint';
import { GPT } from '../model/gpt';
import { nllLoss } from '../model/logprob';
import { makeBatch, promptOf } from '../data/batch';
import { Rng } from '../rng';
import { CharTokenizer } from '../tokenizer';
import { alignObjective, referenceLogProbs, usableGroups, type AlignSpec } from './align';
import { trainLoop, type LossResult, type StepInfo } from './loop';
import { AdamW, OPTIM_DEFAULTS, type OptimConfig } from './optim';
import { referenceBatch, toEvalProblem, type VftConfig } from './vft';

export interface AlignConfig {
  /**
   * `vft` continues plain fine-tuning (the control); `rft` (rejection-sampling fine-tuning, Yuan et al. 2023) is NLL
   * on each question's distinct correct samples plus its reference; the others are the ranking losses.
   */
  method: AlignSpec['method'] | 'vft' | 'rft';
  spec: Omit<AlignSpec, 'method'>;
  seed: number;
  steps: number;
  evalEvery: number;
  evalQuestions: number;
  optim: OptimConfig;
  eval: EvalOptions;
  degradation: DegradationThresholds;
}

export const ALIGN_DEFAULTS: AlignConfig = {
  method: 'aft',
  spec: { constraint: 'none', beta: 1, dpoBeta: 0.1, wNll: 1, feedback: 'binary', groupsPerStep: 8, maxCandidates: 6 },
  seed: 1,
  steps: 120,
  evalEvery: 40,
  evalQuestions: 100,
  optim: { ...OPTIM_DEFAULTS, lr: 3e-4, warmupSteps: 10, totalSteps: 120, minLrRatio: 1 },
  eval: { ...EVAL_DEFAULTS, assessQuestions: 100 },
  degradation: DEGRADATION_DEFAULTS,
};

export interface AlignResult {
  config: AlignConfig;
  groups: number;
  parentEval: EvalReport;
  evals: { step: number; report: EvalReport }[];
  finalEval: EvalReport;
  degradation: Degradation;
  checkpoint: SavedCheckpoint | null;
  seconds: number;
}

export async function readLabelledSet(path: string): Promise<LabelledQuestion[]> {
  return (await readFile(path, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as LabelledQuestion);
}

export async function runAlign(
  parentDir: string,
  samplesPath: string,
  cfg: AlignConfig,
  outDir: string | null,
  hooks: { onStep?: (s: StepInfo) => void; onEval?: (step: number, r: EvalReport) => void; signal?: AbortSignal } = {},
): Promise<AlignResult> {
  const t0 = performance.now();
  const parent = await loadCheckpoint(parentDir);
  const tok = new CharTokenizer(parent.meta.tokenizer);
  const model = new GPT(parent.meta.model, new Rng(0));
  model.setWeights(parent.weights);
  const optimizer = new AdamW(cfg.optim, model.params);
  try {
    const data = generateArith((parent.meta.config as unknown as VftConfig).data);
    const val = data.val.slice(0, cfg.evalQuestions).map(toEvalProblem);
    const evalRng = new Rng(cfg.seed + 7919);
    const quick = { ...cfg.eval, assessQuestions: 0 };
    const parentEval = await evaluate(model, tok, val, quick, evalRng);
    const set = await readLabelledSet(samplesPath);
    const rng = new Rng(cfg.seed);
    let objective: { nextBatch: (r: Rng) => ReturnType<typeof makeBatch>; loss: (m: GPT, b: ReturnType<typeof makeBatch>) => LossResult };
    let groups = 0;
    if (cfg.method === 'vft') {
      objective = {
        nextBatch: (r) => referenceBatch(tok, data.train, cfg.spec.groupsPerStep * 3, r, model.config.blockSize),
        loss: (m, b) => ({ loss: nllLoss(m, b) }),
      };
    } else if (cfg.method === 'rft') {
      const withCorrect = set.filter((q) => q.candidates.some((c) => c.correct));
      if (!withCorrect.length) throw new Error('rft: no question in the sample set has a correct sample');
      groups = withCorrect.length;
      objective = {
        nextBatch: (r) =>
          makeBatch(
            tok,
            Array.from({ length: cfg.spec.groupsPerStep }, () => withCorrect[r.int(0, withCorrect.length - 1)]!).flatMap((q) =>
              [q.reference, ...q.candidates.filter((c) => c.correct).map((c) => c.text)]
                .filter((t, i, all) => all.indexOf(t) === i)
                .map((t) => ({ prompt: promptOf(q.question), response: t })),
            ),
            model.config.blockSize,
          ),
        loss: (m, b) => ({ loss: nllLoss(m, b) }),
      };
    } else {
      const spec: AlignSpec = { ...cfg.spec, method: cfg.method };
      const g = usableGroups(set, spec);
      groups = g.length;
      if (spec.method === 'dpo') await referenceLogProbs(model, tok, g); // the parent is the frozen reference
      objective = alignObjective(tok, model.config.blockSize, g, spec);
    }
    const evals: { step: number; report: EvalReport }[] = [];
    const res = await trainLoop({
      model,
      optimizer,
      rng,
      startStep: 0,
      endStep: cfg.steps,
      accumulate: 1,
      nextBatch: objective.nextBatch,
      loss: objective.loss,
      onStep: hooks.onStep,
      signal: hooks.signal,
      hooks: [
        {
          every: cfg.evalEvery,
          run: async (step) => {
            const r = await evaluate(model, tok, val, quick, evalRng);
            evals.push({ step, report: r });
            hooks.onEval?.(step, r);
          },
        },
      ],
    });
    const degradation = detectDegradation(evals, parentEval, cfg.degradation);
    const finalEval = await evaluate(model, tok, data.test.map(toEvalProblem), cfg.eval, evalRng);
    let checkpoint: SavedCheckpoint | null = null;
    if (outDir) {
      const opt = await optimizer.getState();
      checkpoint = await saveCheckpoint(join(outDir, 'checkpoint'), {
        meta: {
          ...parent.meta,
          step: res.lastStep,
          config: { ...parent.meta.config, align: cfg },
          rng: rng.state(),
          optimizerStep: opt.t,
          extra: { ...parent.meta.extra, parent: parentDir, samples: samplesPath, backend: tf.getBackend() },
        },
        weights: await model.getWeights(),
        m: opt.m,
        v: opt.v,
      });
    }
    return { config: cfg, groups, parentEval, evals, finalEval, degradation, checkpoint, seconds: (performance.now() - t0) / 1000 };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}
