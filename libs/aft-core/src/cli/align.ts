/** `aft align`: one alignment run from a VFT checkpoint and its labelled set (docs/architecture.md, "Pipeline"). */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { backendRecord, initBackend } from '../backend';
import * as spec from '../spec';
import { resolveAlignConfig, runAlign, type AlignConfig } from '../train/run-align';
import { Progress } from './progress';
import { num, parseSets, print, UsageError } from './util';

export async function alignCommand(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      parent: { type: 'string' },
      samples: { type: 'string' },
      method: { type: 'string', default: spec.ALIGN_CHOICE_DEFAULTS.method },
      constraint: { type: 'string', default: spec.ALIGN_CHOICE_DEFAULTS.constraint },
      beta: { type: 'string' },
      'dpo-beta': { type: 'string' },
      'w-nll': { type: 'string' },
      feedback: { type: 'string' },
      steps: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      set: { type: 'string', multiple: true, default: [] },
      'assess-set': { type: 'string' },
    },
  });
  if (!values.parent) throw new UsageError('--parent DIR (the VFT checkpoint) is required');
  if (!values.samples) throw new UsageError('--samples FILE (the labelled set from `aft sample`) is required');
  if (!(spec.CONSTRAINTS as readonly string[]).includes(values.constraint))
    throw new UsageError(`--constraint must be one of ${spec.CONSTRAINTS.join(', ')}`);
  if (values.feedback && !(spec.FEEDBACK as readonly string[]).includes(values.feedback))
    throw new UsageError(`--feedback must be ${spec.FEEDBACK.join(' or ')}`);
  let cfg: AlignConfig;
  try {
    cfg = resolveAlignConfig(
      {
        method: values.method as AlignConfig['method'],
        constraint: values.constraint,
        steps: num(values.steps, 'steps', { int: true, min: 1 }),
        seed: num(values.seed, 'seed', { int: true, min: 0 }),
        beta: num(values.beta, 'beta', { min: 0 }),
        dpoBeta: num(values['dpo-beta'], 'dpo-beta', { min: 1e-9 }),
        wNll: num(values['w-nll'], 'w-nll', { min: 0 }),
        feedback: values.feedback,
      },
      parseSets(values.set),
    );
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const backend = await initBackend();
  const bar = new Progress(`align ${cfg.method}/${cfg.spec.constraint}`, cfg.steps);
  const res = await runAlign(
    resolve(values.parent),
    resolve(values.samples),
    cfg,
    values.out ? resolve(values.out) : null,
    {
      onStep: (s) =>
        bar.update(s.step + 1, `loss ${s.loss.toFixed(3)} gap ${(s.metrics['score/gap'] ?? NaN).toFixed(3)}`),
      onEval: (step, r) =>
        void process.stderr.write(
          `\n[eval] step ${step}: accuracy ${(r.taskAccuracy * 100).toFixed(1)}%, ref ppl ${r.refPerplexity.toFixed(3)}, malformed ${(r.malformedRate * 100).toFixed(0)}%\n`,
        ),
    },
    { assessSet: values['assess-set'] ? resolve(values['assess-set']) : undefined },
  );
  bar.done();
  const { examples: _e, ...final } = res.finalEval;
  print({
    command: 'align',
    ...backendRecord(backend),
    method: cfg.method,
    constraint: cfg.spec.constraint,
    beta: cfg.spec.beta,
    wNll: cfg.spec.wNll,
    steps: cfg.steps,
    groups: res.groups,
    seconds: Number(res.seconds.toFixed(1)),
    parent: { taskAccuracy: res.parentEval.taskAccuracy, refPerplexity: res.parentEval.refPerplexity },
    curve: res.evals.map((e) => ({
      step: e.step,
      taskAccuracy: e.report.taskAccuracy,
      refPerplexity: e.report.refPerplexity,
      malformedRate: e.report.malformedRate,
    })),
    final,
    degradation: res.degradation,
    boundActivity: res.boundActivity,
    checkpoint: res.checkpoint?.dir ?? null,
  });
}
