/**
 * `aft` — train, sample, evaluate and grade from the command line. Progress goes to stderr; each command prints
 * one JSON summary on stdout, with the backend it ran on (`backendRecord`: `backend`, `backend.adapter`, …).
 *
 *   aft vft    --preset tiny [--seed 1] [--steps N] [--out DIR] [--set key=value …]
 *   aft sample --checkpoint DIR [--k 8] [--temperature 0.8] [--top-k 0] [--split train] [--questions 500]
 *              [--step-strict] [--seed 1] [--out FILE.jsonl]
 *   aft eval   --checkpoint DIR [--split test] [--questions 500] [--k 8] [--temperature 0.8] [--assess 100] [--seed 1]
 *              [--per-question FILE --arm NAME]   (per-question correctness as `aft stats paired` reads it)
 *   aft align  --parent DIR --samples FILE [--method M] [--constraint C] [--beta 1] [--dpo-beta 0.1] [--w-nll 1]
 *              [--feedback F] [--steps N] [--seed N] [--out DIR]   (methods, constraints, feedback kinds: spec.ts)
 *   aft reproduce [--preset tiny] [--seeds 3] [--epochs 3 | --steps N] [--vft-steps 3000] [--questions 500] [--out DIR]
 *   aft grade  < lines of {"completion": "...", "gold": "72"}  →  lines of {"extracted": "72", "correct": true}
 *   aft loss   < {"method": "aft", "constraint": "boundary", "beta": 1, "groups": [...]}  →  {"loss": …, "grads": …}
 *   aft stats paired --control ARM [--resamples 2000] [--seed 1]
 *              < lines of {"seed":1,"arm":"aft-detach","questionId":"q17","correct":true}  →  the paired report
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { backendRecord, initBackend } from '../backend';
import { grade } from '../data/grader';
import { evaluate } from '../eval';
import { labelQuestions, writeLabelledSet } from '../label';
import { loadModel } from '../model/load';
import { Rng } from '../rng';
import { checkpointDataset, resolveVftConfig, runVft, toEvalProblem, type VftConfig } from '../train/vft';
import * as spec from '../spec';
import { runLoss } from './loss';
import { statsCommand } from './stats';
import { reproduce, REPRODUCE_VFT_STEPS } from './reproduce';
import { Progress } from './progress';
import { alignCommand } from './align';
import { num, parseSets, print, UsageError } from './util';

const oneOf = (xs: readonly string[]) => xs.join('|');
const USAGE = `usage:
  aft vft    --preset ${oneOf(spec.PRESETS)} [--seed N] [--steps N] [--out DIR] [--set key=value ...]
  aft sample --checkpoint DIR [--k ${spec.SAMPLING_DEFAULTS.k}] [--temperature ${spec.SAMPLING_DEFAULTS.temperature}] [--top-k 0] [--split train|val|test] [--questions N] [--step-strict] [--seed N] [--out FILE]
  aft eval   --checkpoint DIR [--split test|val|train] [--questions N] [--k 8] [--temperature 0.8] [--assess N] [--seed N] [--per-question FILE --arm NAME]
  aft align  --parent DIR --samples FILE [--method ${oneOf([...spec.RANKING_METHODS, ...spec.CONTROL_METHODS])}] [--constraint ${oneOf(spec.CONSTRAINTS)}] [--beta B] [--dpo-beta B] [--w-nll W] [--feedback ${oneOf(spec.FEEDBACK)}] [--steps N] [--seed N] [--out DIR] [--set key=value ...] [--assess-set FILE]
  aft reproduce [--preset ${spec.DEFAULT_PRESET}] [--seeds 3] [--epochs 3 | --steps N] [--vft-steps ${REPRODUCE_VFT_STEPS}] [--questions ${spec.SAMPLING_DEFAULTS.questions}] [--concurrency 2] [--out DIR]
  aft grade  (JSON lines {"completion","gold"} on stdin)
  aft loss   (JSON {"method","constraint","beta","dpoBeta","groups":[{"scores","ranks","refScores"}]} on stdin)
  aft stats paired --control ARM [--resamples N] [--seed N]  (JSON lines {"seed","arm","questionId","correct"} on stdin)`;

async function cmdVft(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      preset: { type: 'string', default: spec.DEFAULT_PRESET },
      seed: { type: 'string' },
      steps: { type: 'string' },
      out: { type: 'string' },
      set: { type: 'string', multiple: true, default: [] },
    },
  });
  const overrides = parseSets(values.set);
  const seed = num(values.seed, 'seed', { int: true, min: 0 });
  const steps = num(values.steps, 'steps', { int: true, min: 1 });
  if (seed !== undefined) overrides['seed'] = seed;
  if (steps !== undefined) overrides['steps'] = steps;
  let cfg: VftConfig;
  try {
    cfg = resolveVftConfig(values.preset, overrides);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const out = resolve(values.out ?? `runs/vft-${cfg.preset}-s${cfg.seed}`);
  mkdirSync(out, { recursive: true });
  const backend = await initBackend();
  const bar = new Progress(`vft ${cfg.preset}`, cfg.steps);
  let lastLoss = NaN;
  const curve: { step: number; taskAccuracy: number; refPerplexity: number }[] = [];
  const res = await runVft(cfg, out, {
    onStep: (s) => {
      lastLoss = s.loss;
      bar.update(s.step + 1, `loss ${s.loss.toFixed(3)}`);
    },
    onEval: (step, r) => {
      curve.push({ step, taskAccuracy: r.taskAccuracy, refPerplexity: r.refPerplexity });
      process.stderr.write(
        `\n[eval] step ${step}: accuracy ${(r.taskAccuracy * 100).toFixed(1)}%, ref ppl ${r.refPerplexity.toFixed(3)}\n`,
      );
    },
  });
  bar.done(`loss ${lastLoss.toFixed(3)}`);
  print({
    command: 'vft',
    ...backendRecord(backend),
    preset: cfg.preset,
    seed: cfg.seed,
    steps: res.steps,
    seconds: Number(res.seconds.toFixed(1)),
    tokensPerSecond: Math.round(res.tokensPerSecond),
    numParams: res.numParams,
    datasetHash: res.datasetHash,
    checkpoint: res.checkpoint?.dir ?? null,
    checkpointSha256: res.checkpoint?.sha256 ?? null,
    accuracyCurve: curve,
    final: res.finalEval,
  });
}

async function problemsOf(meta: { config: Record<string, unknown> }, split: string, n: number | undefined) {
  const data = checkpointDataset(meta);
  const set = { train: data.train, val: data.val, test: data.test }[split];
  if (!set) throw new UsageError(`--split must be train, val or test, got "${split}"`);
  return set.slice(0, n ?? set.length);
}

async function cmdSample(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: 'string' },
      k: { type: 'string', default: String(spec.SAMPLING_DEFAULTS.k) },
      temperature: { type: 'string', default: String(spec.SAMPLING_DEFAULTS.temperature) },
      'top-k': { type: 'string', default: '0' },
      split: { type: 'string', default: 'train' },
      questions: { type: 'string', default: String(spec.SAMPLING_DEFAULTS.questions) },
      'step-strict': { type: 'boolean', default: false },
      seed: { type: 'string', default: '1' },
      out: { type: 'string' },
    },
  });
  if (!values.checkpoint) throw new UsageError('--checkpoint DIR is required');
  const k = num(values.k, 'k', { int: true, min: 1, max: 64 })!;
  const temperature = num(values.temperature, 'temperature', { min: 0, max: 5 })!;
  const topK = num(values['top-k'], 'top-k', { int: true, min: 0 })!;
  const n = num(values.questions, 'questions', { int: true, min: 1 });
  const seed = num(values.seed, 'seed', { int: true, min: 0 })!;
  const backend = await initBackend();
  const { model, tok, meta } = await loadModel(resolve(values.checkpoint));
  const problems = await problemsOf(meta, values.split, n);
  const bar = new Progress('sample', problems.length);
  const t0 = performance.now();
  const { questions, summary } = await labelQuestions(
    model,
    tok,
    problems,
    { k, temperature, topK, stepStrict: values['step-strict'] },
    new Rng(seed),
    (d) => bar.update(d),
  );
  bar.done();
  const out = resolve(
    values.out ?? join(values.checkpoint, '..', `samples-${values.split}-k${k}-t${temperature}.jsonl`),
  );
  await writeLabelledSet(out, questions);
  model.dispose();
  print({
    command: 'sample',
    ...backendRecord(backend),
    out,
    k,
    temperature,
    topK,
    split: values.split,
    seconds: Number(((performance.now() - t0) / 1000).toFixed(1)),
    ...summary,
  });
}

async function cmdEval(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      checkpoint: { type: 'string' },
      split: { type: 'string', default: 'test' },
      questions: { type: 'string' },
      k: { type: 'string', default: '8' },
      temperature: { type: 'string', default: '0.8' },
      assess: { type: 'string', default: '200' },
      seed: { type: 'string', default: '1' },
      'per-question': { type: 'string' },
      arm: { type: 'string' },
    },
  });
  if (!values.checkpoint) throw new UsageError('--checkpoint DIR is required');
  if (values['per-question'] && !values.arm) throw new UsageError('--per-question FILE needs --arm NAME (the method)');
  const backend = await initBackend();
  const { model, tok, meta } = await loadModel(resolve(values.checkpoint));
  const problems = (
    await problemsOf(meta, values.split, num(values.questions, 'questions', { int: true, min: 1 }))
  ).map(toEvalProblem);
  process.stderr.write(`eval: ${problems.length} questions…\n`);
  const report = await evaluate(
    model,
    tok,
    problems,
    {
      k: num(values.k, 'k', { int: true, min: 1, max: 64 })!,
      temperature: num(values.temperature, 'temperature', { min: 0, max: 5 })!,
      assessQuestions: num(values.assess, 'assess', { int: true, min: 0 })!,
    },
    new Rng(num(values.seed, 'seed', { int: true, min: 0 })!),
  );
  model.dispose();
  const { perQuestion, ...summary } = report;
  if (values['per-question']) {
    // the input of `aft stats paired`: one line per question, the checkpoint's training seed pairing it with its arm
    const seed = Number((meta.config as { seed?: unknown }).seed ?? 0);
    const lines = perQuestion.map((q) =>
      JSON.stringify({ seed, arm: values.arm, questionId: q.id, correct: q.correct }),
    );
    writeFileSync(resolve(values['per-question']), `${lines.join('\n')}\n`);
  }
  print({
    command: 'eval',
    ...backendRecord(backend),
    checkpoint: resolve(values.checkpoint),
    step: meta.step,
    split: values.split,
    ...summary,
  });
}

async function cmdGrade() {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let line = 0;
  let bad = 0;
  for await (const raw of rl) {
    line++;
    if (!raw.trim()) continue;
    let row: unknown;
    try {
      row = JSON.parse(raw);
    } catch {
      process.stderr.write(`aft grade: line ${line} is not JSON\n`);
      bad++;
      continue;
    }
    const r = row as { completion?: unknown; gold?: unknown };
    if (typeof r.completion !== 'string' || (typeof r.gold !== 'string' && typeof r.gold !== 'number')) {
      process.stderr.write(`aft grade: line ${line} needs {"completion": string, "gold": string|number}\n`);
      bad++;
      continue;
    }
    process.stdout.write(`${JSON.stringify(grade(r.completion, String(r.gold)))}\n`);
  }
  if (bad) process.exitCode = 2;
}

const [cmd, ...rest] = process.argv.slice(2);
try {
  switch (cmd) {
    case 'vft':
      await cmdVft(rest);
      break;
    case 'sample':
      await cmdSample(rest);
      break;
    case 'eval':
      await cmdEval(rest);
      break;
    case 'align':
      await alignCommand(rest);
      break;
    case 'reproduce': {
      const { values } = parseArgs({
        args: rest,
        options: {
          preset: { type: 'string', default: spec.DEFAULT_PRESET },
          seeds: { type: 'string', default: '3' },
          steps: { type: 'string' },
          epochs: { type: 'string', default: '3' },
          'vft-steps': { type: 'string', default: String(REPRODUCE_VFT_STEPS) },
          questions: { type: 'string', default: String(spec.SAMPLING_DEFAULTS.questions) },
          concurrency: { type: 'string', default: '2' },
          out: { type: 'string', default: 'runs/reproduce' },
        },
      });
      const bin = resolve(import.meta.dirname, '../../bin/aft.mjs');
      print(
        await reproduce({
          preset: values.preset,
          seeds: num(values.seeds, 'seeds', { int: true, min: 1, max: 20 })!,
          alignSteps: num(values.steps, 'steps', { int: true, min: 1 }),
          epochs: num(values.epochs, 'epochs', { min: 0.01, max: 100 })!,
          vftSteps: num(values['vft-steps'], 'vft-steps', { int: true, min: 1 }),
          questions: num(values.questions, 'questions', { int: true, min: 1 })!,
          concurrency: num(values.concurrency, 'concurrency', { int: true, min: 1, max: 16 })!,
          out: values.out,
          bin,
        }),
      );
      break;
    }
    case 'grade':
      await cmdGrade();
      break;
    case 'stats':
      await statsCommand(rest);
      break;
    case 'loss': {
      let text = '';
      for await (const chunk of process.stdin) text += chunk;
      await initBackend();
      try {
        process.stdout.write(`${JSON.stringify(await runLoss(text))}\n`);
      } catch (e) {
        throw new UsageError(`loss: ${(e as Error).message}`);
      }
      break;
    }
    default:
      throw new UsageError(cmd ? `unknown command "${cmd}"` : 'no command given');
  }
} catch (e) {
  if (
    e instanceof UsageError ||
    (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ||
    (e as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE'
  ) {
    process.stderr.write(`aft: ${(e as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  process.stderr.write(`aft: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
}
