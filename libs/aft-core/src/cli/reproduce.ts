/**
 * `aft reproduce`: the paper's experiment end to end, per seed — VFT, sampling and labelling (step-checked
 * positives), then from the same parent: two controls (continued VFT matched on optimizer steps, and matched on
 * reference examples), RFT, AFT none/detach/boundary, DPO/RRHF/PRO with and without a constraint, a β sweep of the
 * boundary, and unconstrained w_nll = 0 runs at the same and at 10× the learning rate. Every run is its own `aft`
 * process (two at a time on two cores). The report (reproduce-report.ts): mean ± std per method, and the paired
 * table of every arm against each control on the same test questions; the constrained AFT variant is chosen on
 * validation. docs/statistics.md says how to read it.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { QuestionOutcome } from '../eval';
import { ALIGN_DEFAULTS } from '../train/run-align';
import { Progress } from './progress';
import {
  chooseOnValidation,
  correctnessRows,
  pairedMarkdown,
  parentsMarkdown,
  stillRising,
  type ParentOutcome,
  type ParentPoint,
  pairedTables,
  summarise,
  toMarkdown,
  type RunOutcome,
} from './reproduce-report';

export { summarise, toMarkdown, type RunOutcome, type TableRow } from './reproduce-report';

export interface AlignRunSpec {
  name: string;
  args: string[];
}

/** The comparison grid: every run continues from the seed's VFT parent with its sample set. */
export const REPRODUCE_GRID: AlignRunSpec[] = [
  { name: 'VFT (continued)', args: ['--method', 'vft'] },
  // continued VFT sees ~3× the reference examples per step a ranking method does; this one sees as many
  { name: 'VFT (matched examples)', args: ['--method', 'vft', '--set', 'controlRefsPerGroup=1'] },
  { name: 'RFT', args: ['--method', 'rft'] },
  { name: 'AFT none', args: ['--method', 'aft', '--constraint', 'none'] },
  { name: 'AFT detach', args: ['--method', 'aft', '--constraint', 'detach'] },
  // β on the scale of the scores the bound acts on: per-character mean log-likelihoods, whose positive−negative gaps
  // are a few hundredths to a few tenths of a nat (at β = 1 a negative reached it on 0–6 % of steps)
  { name: 'AFT boundary β=0.02', args: ['--method', 'aft', '--constraint', 'boundary', '--beta', '0.02'] },
  { name: 'AFT boundary β=0.1', args: ['--method', 'aft', '--constraint', 'boundary', '--beta', '0.1'] },
  { name: 'AFT boundary β=0.3', args: ['--method', 'aft', '--constraint', 'boundary', '--beta', '0.3'] },
  { name: 'DPO none', args: ['--method', 'dpo', '--constraint', 'none'] },
  // DPO's bound acts on β_dpo × the summed log-ratio to the parent (0 at the start)
  { name: 'DPO boundary', args: ['--method', 'dpo', '--constraint', 'boundary', '--beta', '0.1'] },
  { name: 'RRHF none', args: ['--method', 'rrhf', '--constraint', 'none'] },
  { name: 'RRHF boundary', args: ['--method', 'rrhf', '--constraint', 'boundary', '--beta', '0.1'] },
  { name: 'PRO none', args: ['--method', 'pro', '--constraint', 'none'] },
  { name: 'PRO boundary', args: ['--method', 'pro', '--constraint', 'boundary', '--beta', '0.1'] },
  // the collapse case study, at the grid's learning rate (unconfounded) and at 10× it (the collapse in a hurry)
  { name: 'AFT none, w_nll=0', args: ['--method', 'aft', '--constraint', 'none', '--w-nll', '0'] },
  {
    name: 'AFT none, w_nll=0, 10× lr',
    args: ['--method', 'aft', '--constraint', 'none', '--w-nll', '0', '--set', 'optim.lr=0.003'],
  },
];

/** The controls every arm is paired against. */
export const REPRODUCE_CONTROLS = ['VFT (continued)', 'VFT (matched examples)'];
/** The constrained AFT variants; the report's AFT is the one with the best validation accuracy. */
export const CONSTRAINED_AFT = REPRODUCE_GRID.map((r) => r.name).filter((n) => /^AFT (detach|boundary)/.test(n));

function runAft(bin: string, args: string[], log: string): Promise<unknown> {
  return new Promise((res, rej) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      writeFileSync(log, err);
      if (code === 0) res(JSON.parse(out));
      else rej(new Error(`aft ${args.join(' ')} exited ${code}:\n${err.slice(-2000)}`));
    });
  });
}

/** A FIFO semaphore: at most `n` processes at once, whatever stage they belong to. */
function limiter(n: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(f: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await f();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/**
 * Settings of the grid's alignment runs that keep the whole reproduction inside 30 minutes on two cores: the full
 * 500-question test split for the final accuracy, fewer questions for the periodic (degradation) evaluations and
 * the assessment.
 */
export const REPRODUCE_ALIGN_SETS = [
  'evalEvery=20',
  'checkpointEvery=1000',
  'evalQuestions=40',
  // best-of-k rerank and majority vote on the first 200 test questions (k = 8 samples each)
  'eval.assessQuestions=200',
  // every distinct candidate the sampler drew (k = 8), not the first 6
  'spec.maxCandidates=8',
];

/** The VFT parents' data: a 2,000-question test split (±1.1 points at 50 %), shared by every run of a seed. */
export const REPRODUCE_VFT_SETS = ['data.test=2000'];

/** The parents' training: ~3 epochs of `arith` (the tiny preset's own 700 steps is ~0.7 and still rising). */
export const REPRODUCE_VFT_STEPS = 3000;

/** Test questions of the fixed candidate set (k = 8 samples each from the parent) that every run's model scores. */
export const REPRODUCE_ASSESS_QUESTIONS = 200;

/** Groups (questions) a ranking method trains on per step: ALIGN_DEFAULTS.spec.groupsPerStep, which the grid keeps. */
const GROUPS_PER_STEP = ALIGN_DEFAULTS.spec.groupsPerStep;

export interface ReproduceOptions {
  preset: string;
  seeds: number;
  /** Fixed alignment steps; when absent, `epochs` passes over the seed's usable (mixed) questions. */
  alignSteps?: number | undefined;
  epochs: number;
  vftSteps?: number | undefined;
  questions: number;
  concurrency: number;
  out: string;
  bin: string;
}

export async function reproduce(o: ReproduceOptions) {
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const seeds = Array.from({ length: o.seeds }, (_, i) => i + 1);
  const total = seeds.length * (3 + REPRODUCE_GRID.length);
  const bar = new Progress('reproduce', total);
  let done = 0;
  const tick = () => bar.update(++done);
  const t0 = performance.now();
  const seedDir = (s: number) => join(out, `seed-${s}`);
  // per seed: VFT → sample → the grid; seeds overlap, so both cores stay busy to the end
  const limit = limiter(o.concurrency);
  const step = <T>(f: () => Promise<T>) => limit(f).then((r) => (tick(), r));
  const parents: ParentOutcome[] = [];
  const stepsBySeed = new Map<number, number>();
  const perSeed = await Promise.all(
    seeds.map(async (s) => {
      const ckpt = join(seedDir(s), 'vft', 'checkpoint');
      const samples = join(seedDir(s), 'samples.jsonl');
      const assessSet = join(seedDir(s), 'assess-set.jsonl');
      const parent = (await step(() =>
        runAft(
          o.bin,
          [
            'vft',
            '--preset',
            o.preset,
            '--seed',
            String(s),
            '--out',
            join(seedDir(s), 'vft'),
            ...(o.vftSteps ? ['--steps', String(o.vftSteps)] : []),
            ...REPRODUCE_VFT_SETS.flatMap((x) => ['--set', x]),
          ],
          join(out, `vft-${s}.log`),
        ),
      )) as { accuracyCurve: ParentPoint[] };
      parents.push({ seed: s, curve: parent.accuracyCurve, stillRising: stillRising(parent.accuracyCurve) });
      const sample = (split: string, questions: number, file: string) =>
        step(() =>
          runAft(
            o.bin,
            ['sample', '--checkpoint', ckpt, '--k', '8', '--temperature', '0.8', '--split', split].concat([
              '--questions',
              String(questions),
              '--step-strict',
              '--seed',
              String(s),
              '--out',
              file,
            ]),
            join(out, `sample-${split}-${s}.log`),
          ),
        );
      // the training candidates, and a fixed candidate set on test questions every model of the seed scores
      const labelled = (await sample('train', o.questions, samples)) as { mixedQuestions: number };
      // an epoch is one pass over the questions a ranking loss can use, GROUPS_PER_STEP of them a step
      const alignSteps = o.alignSteps ?? Math.max(1, Math.ceil((o.epochs * labelled.mixedQuestions) / GROUPS_PER_STEP));
      stepsBySeed.set(s, alignSteps);
      await sample('test', REPRODUCE_ASSESS_QUESTIONS, assessSet);
      return Promise.all(
        REPRODUCE_GRID.map((r, k) =>
          step(async (): Promise<RunOutcome> => {
            const res = (await runAft(
              o.bin,
              [
                'align',
                '--parent',
                ckpt,
                '--samples',
                samples,
                '--steps',
                String(alignSteps),
                '--seed',
                String(s),
                ...r.args,
                ...REPRODUCE_ALIGN_SETS.flatMap((x) => ['--set', x]),
                '--assess-set',
                assessSet,
                '--out',
                join(seedDir(s), `run-${k}`),
              ],
              join(out, `align-${s}-${k}.log`),
            )) as {
              final: Record<string, number | null> & {
                perQuestion: QuestionOutcome[];
                fixedAssessment: { accuracy: number | null } | null;
              };
              curve: { taskAccuracy: number }[];
              degradation: { degraded: boolean; onsetStep: number | null };
              boundActivity: { steps: number; activeSteps: number };
              constraint: string;
            };
            return {
              name: r.name,
              seed: s,
              taskAccuracy: res.final['taskAccuracy'] as number,
              rerankAccuracy: res.final['rerankAccuracy'] ?? null,
              fixedAssessmentAccuracy: res.final.fixedAssessment?.accuracy ?? null,
              majorityAccuracy: res.final['majorityAccuracy'] ?? null,
              valAccuracy: res.curve.at(-1)?.taskAccuracy ?? null,
              // a bound only exists for the boundary constraint (the metric is computed at the default β for the rest)
              boundActive:
                res.constraint === 'boundary' && res.boundActivity.steps
                  ? res.boundActivity.activeSteps / res.boundActivity.steps
                  : null,
              perQuestion: res.final.perQuestion,
              assessmentAccuracy: res.final['assessmentAccuracy'] ?? null,
              scoreGap: res.final['scoreGap'] ?? null,
              refPerplexity: res.final['refPerplexity'] as number,
              malformedRate: res.final['malformedRate'] as number,
              degraded: res.degradation.degraded,
              onsetStep: res.degradation.onsetStep,
            };
          }),
        ),
      );
    }),
  );
  const outcomes = perSeed.flat();
  bar.done();
  const names = REPRODUCE_GRID.map((r) => r.name);
  const rows = summarise(outcomes, names);
  const chosen = chooseOnValidation(outcomes, CONSTRAINED_AFT);
  const paired = pairedTables(outcomes, REPRODUCE_CONTROLS);
  const pairedRerank = pairedTables(outcomes, REPRODUCE_CONTROLS, 'rerank');
  const markdown = [
    parentsMarkdown(parents),
    toMarkdown(rows),
    'Greedy accuracy, paired on the 2,000 test questions:',
    ...paired.map((p) => pairedMarkdown(p, names, chosen)),
    'Best-of-k rerank accuracy, paired on the 200 sampled test questions:',
    ...pairedRerank.map((p) => pairedMarkdown(p, names, chosen)),
    `Constrained AFT chosen on validation accuracy: ${chosen ?? '—'}.`,
  ].join('\n\n');
  const seconds = (performance.now() - t0) / 1000;
  writeFileSync(join(out, 'results.md'), `${markdown}\n`);
  const slim = outcomes.map(({ perQuestion: _q, ...o }) => o);
  // every run's per-question outcomes, as `aft stats paired` reads them, so any other pairing can be computed later
  for (const rule of ['greedy', 'rerank'] as const) {
    const lines = correctnessRows(outcomes, rule).map((r) => JSON.stringify(r));
    writeFileSync(join(out, `outcomes-${rule}.jsonl`), `${lines.join('\n')}\n`);
  }
  writeFileSync(
    join(out, 'results.json'),
    JSON.stringify(
      {
        parents,
        alignSteps: Object.fromEntries(stepsBySeed),
        rows,
        paired,
        pairedRerank,
        chosen,
        outcomes: slim,
        seconds,
      },
      null,
      2,
    ),
  );
  return {
    command: 'reproduce',
    out,
    seeds: o.seeds,
    alignSteps: Object.fromEntries(stepsBySeed),
    parents,
    seconds: Number(seconds.toFixed(1)),
    rows,
    chosen,
    markdown,
  };
}
