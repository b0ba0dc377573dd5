/**
 * An alignment run end to end: restore the VFT parent, read its labelled sample set, train with
 * L = w_nll · NLL + L_method, evaluate periodically, run the degradation detector against the parent, and save a
 * checkpoint. Continued VFT (method `vft`) trains the parent further on NLL alone, as the control.
 */
import { readFile } from 'node:fs/promises';
import type { ArithDataset } from '../data/arith';
import { detectDegradation, DEGRADATION_DEFAULTS, type Degradation, type DegradationThresholds } from '../degradation';
import { EVAL_DEFAULTS, type EvalOptions, type EvalReport } from '../eval';
import type { SampledCandidate } from '../assess';
import type { LabelledQuestion } from '../label';
import { checkpointDirIn, hasCheckpoint, loadCheckpoint, type SavedCheckpoint } from './checkpoint';
import type { GPT } from '../model/gpt';
import { resolveConfig } from '../model/config';
import { ALIGN_CHOICE_DEFAULTS as CHOICE, CONTROL_METHODS, RANKING_METHODS } from '../spec';
import { nllLoss } from '../model/logprob';
import { scoreCompletions } from '../sample';
import { makeBatch, promptOf, type TokenBatch } from '../data/batch';
import type { Rng } from '../rng';
import type { CharTokenizer } from '../tokenizer';
import { alignObjective, referenceLogProbs, usableGroups, type AlignSpec } from './align';
import type { LoopOptions } from './loop';
import { OPTIM_DEFAULTS, type OptimConfig } from './optim';
import { RunSession, type TrainHooks } from './session';
import { checkpointDataset, referenceBatch, toEvalProblem } from './vft';

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
  /** Save a resumable checkpoint every this many steps (when the run has an output folder). */
  checkpointEvery: number;
  /** Questions that also get assessment accuracy at each periodic evaluation (0: only the final evaluation has it). */
  evalAssessQuestions: number;
  /**
   * Continued VFT's reference examples per step, per group a ranking method draws (3: the default control, ~3× the
   * reference NLL a ranking method sees; 1: the control matched on reference examples — docs/statistics.md).
   */
  controlRefsPerGroup: number;
  optim: OptimConfig;
  eval: EvalOptions;
  degradation: DegradationThresholds;
}

export const ALIGN_DEFAULTS: AlignConfig = {
  method: CHOICE.method,
  spec: {
    constraint: CHOICE.constraint,
    beta: CHOICE.beta,
    dpoBeta: CHOICE.dpoBeta,
    wNll: CHOICE.wNll,
    feedback: CHOICE.feedback,
    groupsPerStep: 8,
    maxCandidates: 6,
    referenceAsPositive: false,
  },
  seed: CHOICE.seed,
  steps: CHOICE.steps,
  evalEvery: 40,
  evalQuestions: 100,
  checkpointEvery: 40,
  evalAssessQuestions: 0,
  controlRefsPerGroup: 3,
  optim: { ...OPTIM_DEFAULTS, lr: CHOICE.lr, warmupSteps: 10, totalSteps: CHOICE.steps, minLrRatio: 1 },
  eval: { ...EVAL_DEFAULTS, assessQuestions: 100 },
  degradation: DEGRADATION_DEFAULTS,
};

export interface AlignChoice {
  method: AlignConfig['method'];
  constraint?: string;
  beta?: number;
  dpoBeta?: number;
  wNll?: number;
  feedback?: string;
  steps?: number;
  seed?: number;
  lr?: number;
}

/**
 * The defaults with a method's choices and dotted overrides (`spec.groupsPerStep`, `optim.lr`, `eval.k`,
 * `degradation.pplRatio`, `evalEvery` …). An unknown key or a value of the wrong type throws, naming the valid keys.
 */
export function resolveAlignConfig(choice: AlignChoice, sets: Record<string, unknown> = {}): AlignConfig {
  const methods: readonly string[] = [...RANKING_METHODS, ...CONTROL_METHODS];
  if (!methods.includes(choice.method))
    throw new Error(`method must be one of ${methods.join(', ')}, got "${choice.method}"`);
  const pick = (prefix: string) =>
    Object.fromEntries(
      Object.entries(sets)
        .filter(([k]) => k.startsWith(prefix))
        .map(([k, v]) => [k.slice(prefix.length), v]),
    );
  const known = ['spec.', 'optim.', 'eval.', 'degradation.'];
  const top = Object.fromEntries(Object.entries(sets).filter(([k]) => !known.some((p) => k.startsWith(p))));
  const base = resolveConfig(ALIGN_DEFAULTS, top, 'config');
  const steps = choice.steps ?? base.steps;
  const given = <T>(v: T | undefined, key: string) => (v === undefined ? {} : { [key]: v });
  return {
    ...base,
    method: choice.method,
    steps,
    seed: choice.seed ?? base.seed,
    spec: resolveConfig(
      base.spec,
      {
        ...pick('spec.'),
        ...given(choice.constraint, 'constraint'),
        ...given(choice.beta, 'beta'),
        ...given(choice.dpoBeta, 'dpoBeta'),
        ...given(choice.wNll, 'wNll'),
        ...given(choice.feedback, 'feedback'),
      },
      'spec',
    ),
    optim: resolveConfig(base.optim, { totalSteps: steps, ...given(choice.lr, 'lr'), ...pick('optim.') }, 'optim'),
    eval: resolveConfig(base.eval, pick('eval.'), 'eval'),
    degradation: resolveConfig(base.degradation, pick('degradation.'), 'degradation'),
  };
}

export interface AlignResult {
  config: AlignConfig;
  groups: number;
  parentEval: EvalReport;
  evals: { step: number; report: EvalReport }[];
  finalEval: EvalReport;
  degradation: Degradation;
  checkpoint: SavedCheckpoint | null;
  seconds: number;
  /**
   * Training steps (of this process: a resumed run counts from its resume) with a negative under its boundary, on
   * the method's own scale (`boundary/belowFraction` > 0). A boundary that is never reached constrains nothing:
   * its β is off the scale of the method's score gaps (docs/statistics.md).
   */
  boundActivity: { steps: number; activeSteps: number };
}

/** Quantiles reported for the score distributions. */
export const DIST_QUANTILES = [0.1, 0.25, 0.5, 0.75, 0.9] as const;

export interface ScoreDistribution {
  /** Quantiles (DIST_QUANTILES) of positive and of negative scores, each relative to its group's lowest positive. */
  positive: number[];
  negative: number[];
  /**
   * Where the boundary constraint holds negatives: β below the lowest positive; null for DPO, whose bound acts on
   * β_dpo × the summed log-ratio, not on these per-character scores.
   */
  boundary: number | null;
}

const quantile = (sorted: readonly number[], q: number) => {
  if (!sorted.length) return NaN;
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  return sorted[lo]! + (sorted[Math.min(lo + 1, sorted.length - 1)]! - sorted[lo]!) * (i - lo);
};

/**
 * How the model scores a fixed set of labelled groups: every candidate's s(c) minus its group's lowest positive, so
 * positives sit at ≥ 0 and the boundary of every group is the same line, −β. Over training it shows what the
 * constraint does: unconstrained losses push negatives ever lower (and positives with them).
 */
export async function scoreDistribution(
  model: GPT,
  tok: CharTokenizer,
  set: readonly LabelledQuestion[],
  beta: number | null,
  maxGroups = 32,
): Promise<ScoreDistribution> {
  const groups = set
    .filter((q) => q.candidates.some((c) => c.positive) && q.candidates.some((c) => !c.positive))
    .slice(0, maxGroups);
  const flat = groups.flatMap((q) =>
    q.candidates.map((c) => ({ question: q.question, completion: c.text, positive: c.positive, q: q.id })),
  );
  const scores = await scoreCompletions(model, tok, flat);
  const minPos = new Map<string, number>();
  flat.forEach((f, i) => f.positive && minPos.set(f.q, Math.min(minPos.get(f.q) ?? Infinity, scores[i]!)));
  const pos: number[] = [];
  const neg: number[] = [];
  flat.forEach((f, i) => (f.positive ? pos : neg).push(scores[i]! - minPos.get(f.q)!));
  pos.sort((a, b) => a - b);
  neg.sort((a, b) => a - b);
  return {
    positive: DIST_QUANTILES.map((q) => quantile(pos, q)),
    negative: DIST_QUANTILES.map((q) => quantile(neg, q)),
    boundary: beta === null ? null : -beta,
  };
}

export async function readLabelledSet(path: string): Promise<LabelledQuestion[]> {
  return (await readFile(path, 'utf8'))
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as LabelledQuestion);
}

export interface AlignHooks extends TrainHooks {
  /** After each periodic evaluation, with the detector's verdict over the evaluations so far. */
  onEval?: (step: number, r: EvalReport, degradation: Degradation) => void | Promise<void>;
  /** After each periodic evaluation: how positives and negatives score relative to the boundary (costs a scoring pass). */
  onScores?: (step: number, scores: ScoreDistribution) => void | Promise<void>;
}

/** The batch source and loss of a method; `groups` counts the questions it trains on (0 for continued VFT). */
async function methodObjective(
  cfg: AlignConfig,
  s: RunSession,
  data: ArithDataset,
  set: readonly LabelledQuestion[],
): Promise<Pick<LoopOptions, 'nextBatch' | 'loss'> & { groups: number }> {
  const { tok } = s;
  const { blockSize } = s.model.config;
  const nll = (m: GPT, b: TokenBatch) => ({ loss: nllLoss(m, b) });
  if (cfg.method === 'vft') {
    const nextBatch = (r: Rng) =>
      referenceBatch(tok, data.train, cfg.spec.groupsPerStep * cfg.controlRefsPerGroup, r, blockSize);
    return { nextBatch, loss: nll, groups: 0 };
  }
  if (cfg.method === 'rft') {
    // positives, not final-answer matches: with step-checked labels a right answer by wrong steps is no positive
    const withCorrect = set.filter((q) => q.candidates.some((c) => c.positive));
    if (!withCorrect.length) throw new Error('rft: no question in the sample set has a positive sample');
    const nextBatch = (r: Rng) =>
      makeBatch(
        tok,
        Array.from({ length: cfg.spec.groupsPerStep }, () => withCorrect[r.int(0, withCorrect.length - 1)]!).flatMap(
          (q) =>
            [q.reference, ...q.candidates.filter((c) => c.positive).map((c) => c.text)]
              .filter((t, i, all) => all.indexOf(t) === i)
              .map((t) => ({ prompt: promptOf(q.question), response: t })),
        ),
        blockSize,
      );
    return { nextBatch, loss: nll, groups: withCorrect.length };
  }
  const spec: AlignSpec = { ...cfg.spec, method: cfg.method };
  const g = usableGroups(set, spec);
  if (spec.method === 'dpo') await referenceLogProbs(s.model, tok, g); // the parent is the frozen reference
  return { ...alignObjective(tok, blockSize, g, spec), groups: g.length };
}

/** A labelled set's candidates as the evaluator scores them. */
function candidatesOf(set: readonly LabelledQuestion[]): SampledCandidate[] {
  return set.flatMap((q) =>
    q.candidates.map((c) => ({ questionId: q.id, question: q.question, gold: q.answer, text: c.text })),
  );
}

export async function runAlign(
  parentDir: string,
  samplesPath: string,
  cfg: AlignConfig,
  outDir: string | null,
  hooks: AlignHooks = {},
  opts: {
    /** Start from this checkpoint's weights instead of the parent's (the parent stays the reference and baseline). */
    initFrom?: string;
    /**
     * A labelled set sampled once from the parent (`aft sample` on test questions) that the final evaluation scores:
     * assessment accuracy on the same candidate pairs for every method (EvalReport.fixedAssessment).
     */
    assessSet?: string;
  } = {},
): Promise<AlignResult & { aborted: boolean }> {
  const t0 = performance.now();
  const parent = await loadCheckpoint(parentDir);
  const s = RunSession.fromCheckpoint(parent, {
    optim: cfg.optim,
    seed: cfg.seed,
    config: { ...parent.meta.config, align: cfg },
    extra: parent.meta.extra,
    checkpointEvalRng: true,
  });
  try {
    const data = checkpointDataset(parent.meta);
    const val = data.val.slice(0, cfg.evalQuestions).map(toEvalProblem);
    const quick = { ...cfg.eval, assessQuestions: cfg.evalAssessQuestions };
    const ckptDir = outDir ? checkpointDirIn(outDir) : null;
    // a run that crashed resumes from its last checkpoint: weights, optimizer, RNGs, step and the evaluations so far
    const resumed = ckptDir && hasCheckpoint(ckptDir) ? await loadCheckpoint(ckptDir) : null;
    const saved = resumed?.meta.extra as
      { parentEval?: EvalReport; evals?: { step: number; report: EvalReport }[] } | undefined;
    const parentEval = saved?.parentEval ?? (await s.evaluate(val, quick));
    const set = await readLabelledSet(samplesPath);
    const evals: { step: number; report: EvalReport }[] = [...(saved?.evals ?? [])];
    const { groups, ...objective } = await methodObjective(cfg, s, data, set);
    // only now move off the parent's weights: the parent's evaluation and DPO's reference are the parent's
    if (resumed) await s.restore(resumed);
    // a fork: the weights of another run's checkpoint (e.g. a degraded run's last good one), a fresh optimizer
    else if (opts.initFrom) s.model.setWeights((await loadCheckpoint(opts.initFrom)).weights);
    const checkpointExtra = () => ({
      parent: parentDir,
      samples: samplesPath,
      initFrom: opts.initFrom ?? null,
      parentEval,
      evals,
    });
    const boundActivity = { steps: 0, activeSteps: 0 };
    const res = await s.train({
      ...objective,
      endStep: cfg.steps,
      accumulate: 1,
      onStep: (st) => {
        boundActivity.steps++;
        if ((st.metrics['boundary/belowFraction'] ?? 0) > 0) boundActivity.activeSteps++;
        return hooks.onStep?.(st);
      },
      signal: hooks.signal,
      beforeCheckpoint: hooks.beforeCheckpoint,
      onCheckpoint: hooks.onCheckpoint,
      evaluation: {
        every: cfg.evalEvery,
        run: async (step) => {
          const r = await s.evaluate(val, quick);
          evals.push({ step, report: r });
          if (hooks.onScores)
            await hooks.onScores(
              step,
              await scoreDistribution(s.model, s.tok, set, cfg.method === 'dpo' ? null : cfg.spec.beta),
            );
          await hooks.onEval?.(step, r, detectDegradation(evals, parentEval, cfg.degradation));
        },
      },
      // the last step's checkpoint is saved below, after the final evaluation, and returned rather than announced
      checkpoints: ckptDir ? { dir: ckptDir, every: cfg.checkpointEvery, atEnd: false, extra: checkpointExtra } : null,
    });
    const degradation = detectDegradation(evals, parentEval, cfg.degradation);
    const common = { config: cfg, groups, parentEval, evals, degradation, boundActivity };
    if (res.aborted) {
      const seconds = (performance.now() - t0) / 1000;
      return { ...common, finalEval: parentEval, checkpoint: null, seconds, aborted: true };
    }
    const fixedCandidates = opts.assessSet ? candidatesOf(await readLabelledSet(opts.assessSet)) : undefined;
    const finalEval = await s.evaluate(data.test.map(toEvalProblem), { ...cfg.eval, fixedCandidates });
    const checkpoint = ckptDir ? await s.checkpoint(ckptDir, hooks, checkpointExtra()) : null;
    return { ...common, finalEval, checkpoint, seconds: (performance.now() - t0) / 1000, aborted: false };
  } finally {
    s.dispose();
  }
}
