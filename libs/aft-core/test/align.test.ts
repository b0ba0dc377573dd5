import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  alignObjective,
  AdamW,
  CharTokenizer,
  CONSTRAINTS,
  generateArith,
  initBackend,
  loadCheckpoint,
  NoContrastError,
  RANKING_METHODS,
  OPTIM_DEFAULTS,
  referenceLogProbs,
  resolveVftConfig,
  runAlign,
  ALIGN_DEFAULTS,
  writeLabelledSet,
  trainLoop,
  usableGroups,
  VftSession,
  type AlignSpec,
  type LabelledQuestion,
} from '../src';

beforeAll(async () => {
  await initBackend();
});

/** A labelled set without sampling: each question's correct COTs, plus corrupted ones (a wrong step and answer). */
function syntheticSet(n: number): LabelledQuestion[] {
  const data = generateArith({ train: n, val: 1, test: 1 });
  return data.train.map((p) => {
    const wrong = p.cots[0]!.replace(/=(\d+)\n/, (_, d) => `=${Number(d) + 1}\n`).replace(
      /#### (\d+)/,
      (_, d) => `#### ${Number(d) + 3}`,
    );
    const cands = [
      ...p.cots.slice(0, 2).map((text) => ({
        text,
        correct: true,
        allStepsRight: true,
        correctSteps: 2,
        positive: true,
        rank: 0,
        binaryRank: 0,
        score: 0,
      })),
      {
        text: wrong,
        correct: false,
        allStepsRight: false,
        correctSteps: 1,
        positive: false,
        rank: 1,
        binaryRank: 1,
        score: 0,
      },
      {
        text: '1+1=3\n#### 9',
        correct: false,
        allStepsRight: false,
        correctSteps: 0,
        positive: false,
        rank: 2,
        binaryRank: 1,
        score: 0,
      },
    ];
    return { id: p.id, question: p.question, answer: p.answer, reference: p.cots[p.ref]!, candidates: cands };
  });
}

const TINY = {
  batchSize: 4,
  'model.dModel': 16,
  'model.nHead': 2,
  'model.nLayer': 1,
  'model.blockSize': 80,
  'data.train': 50,
  'data.val': 5,
  'data.test': 5,
};

describe('alignment training smoke test', () => {
  const set = syntheticSet(12);

  it.each(RANKING_METHODS.flatMap((m) => CONSTRAINTS.map((c) => [m, c] as const)))(
    '%s with constraint %s: finite loss, every weight moves',
    async (method, constraint) => {
      const s = new VftSession(resolveVftConfig('tiny', TINY));
      const spec: AlignSpec = {
        method,
        constraint,
        beta: 1,
        dpoBeta: 0.1,
        wNll: 1,
        feedback: 'ranked',
        groupsPerStep: 3,
        maxCandidates: 4,
      };
      const groups = usableGroups(set, spec);
      expect(groups.length).toBe(12);
      if (method === 'dpo') await referenceLogProbs(s.model, s.tok, groups);
      const before = await s.model.getWeights();
      const { nextBatch, loss } = alignObjective(s.tok, s.model.config.blockSize, groups, spec);
      const optimizer = new AdamW({ ...OPTIM_DEFAULTS, lr: 1e-3, warmupSteps: 1 }, s.model.params);
      const losses: number[] = [];
      const metrics: Record<string, number>[] = [];
      await trainLoop({
        model: s.model,
        optimizer,
        rng: s.rng,
        startStep: 0,
        endStep: 2,
        accumulate: 1,
        nextBatch,
        loss,
        onStep: (i) => {
          losses.push(i.loss);
          metrics.push(i.metrics);
        },
      });
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(Object.keys(metrics[0]!)).toEqual(
        expect.arrayContaining([
          'loss/nll',
          `loss/${method}`,
          'score/positive',
          'score/negative',
          'score/gap',
          'boundary/belowFraction',
        ]),
      );
      expect(Object.values(metrics[1]!).every(Number.isFinite)).toBe(true);
      const after = await s.model.getWeights();
      for (const [name, w] of Object.entries(after)) {
        expect(
          w.some((v, i) => v !== before[name]![i]),
          `${name} did not move`,
        ).toBe(true);
      }
      optimizer.dispose();
      s.dispose();
      expect(tf.memory().numTensors).toBeLessThan(400);
    },
  );

  const BINARY_SPEC: AlignSpec = {
    method: 'aft',
    constraint: 'none',
    beta: 1,
    dpoBeta: 0.1,
    wNll: 1,
    feedback: 'binary',
    groupsPerStep: 2,
    maxCandidates: 8,
  };

  it('binary feedback keeps only questions with both correct and incorrect candidates', () => {
    const spec = BINARY_SPEC;
    const allCorrect = { ...set[0]!, candidates: set[0]!.candidates.filter((c) => c.positive) };
    expect(usableGroups([allCorrect, set[1]!], spec)).toHaveLength(1);
    expect(() => alignObjective(new CharTokenizer(), 80, [], spec)).toThrow(
      /no question in the sample set has both better and worse candidates/,
    );
    // typed, so the worker fails the job at once instead of retrying a deterministic draw
    expect(() => alignObjective(new CharTokenizer(), 80, [], spec)).toThrow(NoContrastError);
  });

  it('can put the reference COT among the positives, making an all-wrong question usable', () => {
    const spec = BINARY_SPEC;
    const allWrong = { ...set[0]!, candidates: set[0]!.candidates.filter((c) => !c.positive) };
    expect(usableGroups([allWrong], spec)).toHaveLength(0);
    const [g] = usableGroups([allWrong], { ...spec, referenceAsPositive: true });
    expect(g!.texts[0]).toBe(allWrong.reference);
    expect(g!.ranks).toEqual([0, ...allWrong.candidates.map((c) => c.binaryRank)]);
    // ranked feedback: the reference ranks above every candidate, the best sampled one included
    const other = { ...set[0]!, reference: '1+1=2\n#### 2' }; // a reference no candidate is
    const [r] = usableGroups([other], { ...spec, feedback: 'ranked', referenceAsPositive: true });
    expect(r!.ranks).toEqual([0, ...other.candidates.map((c) => c.rank + 1)]);
    // a candidate that already is the reference is not added twice
    const withRef = { ...set[0]!, candidates: [{ ...set[0]!.candidates[0]!, text: set[0]!.reference }] };
    expect(usableGroups([withRef], { ...spec, referenceAsPositive: true })).toHaveLength(0);
  });
});

describe('runAlign', () => {
  it('trains from a parent checkpoint and a labelled set, evaluates, checks for degradation, saves a checkpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aft-align-'));
    try {
      const parent = new VftSession(resolveVftConfig('tiny', { ...TINY, 'data.val': 8, 'data.test': 6 }));
      await parent.save(join(dir, 'parent'));
      parent.dispose();
      await writeLabelledSet(join(dir, 'samples.jsonl'), syntheticSet(6));
      for (const method of ['dpo', 'vft', 'rft'] as const) {
        const r = await runAlign(
          join(dir, 'parent'),
          join(dir, 'samples.jsonl'),
          {
            ...ALIGN_DEFAULTS,
            method,
            steps: 2,
            evalEvery: 1,
            evalQuestions: 4,
            spec: { ...ALIGN_DEFAULTS.spec, groupsPerStep: 2, constraint: 'boundary' },
            eval: { ...ALIGN_DEFAULTS.eval, assessQuestions: 2, k: 2, maxNewTokens: 8 },
          },
          join(dir, method),
        );
        expect(r.evals.map((e) => e.step)).toEqual([1, 2]);
        expect(r.finalEval.questions).toBe(6);
        expect(typeof r.degradation.degraded).toBe('boolean');
        expect(r.checkpoint?.sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(r.groups).toBe(method === 'vft' ? 0 : 6);
        expect(Number.isFinite(r.finalEval.refPerplexity)).toBe(true);
      }
      // step-checked labels: two questions' right answers reached by a wrong step are no positives, and RFT
      // trains only on questions with a positive
      const strict = syntheticSet(6).map((q, i) =>
        i < 2 ? { ...q, candidates: q.candidates.map((c) => ({ ...c, positive: false })) } : q,
      );
      await writeLabelledSet(join(dir, 'strict.jsonl'), strict);
      const rft = await runAlign(
        join(dir, 'parent'),
        join(dir, 'strict.jsonl'),
        {
          ...ALIGN_DEFAULTS,
          method: 'rft',
          steps: 1,
          evalEvery: 1,
          evalQuestions: 2,
          spec: { ...ALIGN_DEFAULTS.spec, groupsPerStep: 2 },
          eval: { ...ALIGN_DEFAULTS.eval, assessQuestions: 0, maxNewTokens: 8 },
        },
        null,
        {},
        { assessSet: join(dir, 'strict.jsonl') },
      );
      expect(rft.groups).toBe(4);
      // the fixed candidate set: graded by final answer (not by steps), scored by the model — right × wrong per question
      const pairs = strict.reduce((n, q) => {
        const right = new Set(q.candidates.filter((c) => c.correct).map((c) => c.text)).size;
        return n + right * new Set(q.candidates.filter((c) => !c.correct).map((c) => c.text)).size;
      }, 0);
      expect(pairs).toBeGreaterThan(6);
      expect(rft.finalEval.fixedAssessment).toMatchObject({ questions: 6, pairs });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('resumes a DPO run exactly (the reference stays the parent), and a fork starts from another checkpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aft-align-resume-'));
    try {
      const cfgOf = (seed: number) => resolveVftConfig('tiny', { ...TINY, seed, 'data.val': 8, 'data.test': 6 });
      const a = new VftSession(cfgOf(1));
      await a.save(join(dir, 'parent'));
      a.dispose();
      const b = new VftSession(cfgOf(2));
      await b.save(join(dir, 'other'));
      const otherWeights = await b.model.getWeights();
      b.dispose();
      await writeLabelledSet(join(dir, 'samples.jsonl'), syntheticSet(6));
      const cfg = {
        ...ALIGN_DEFAULTS,
        method: 'dpo' as const,
        steps: 4,
        evalEvery: 2,
        checkpointEvery: 2,
        evalQuestions: 4,
        spec: { ...ALIGN_DEFAULTS.spec, groupsPerStep: 2 },
        eval: { ...ALIGN_DEFAULTS.eval, assessQuestions: 2, k: 2, maxNewTokens: 8 },
      };
      const losses = (into: number[]) => ({
        onStep: (s: { step: number; loss: number }) => void (into[s.step] = s.loss),
      });
      const whole: number[] = [];
      const full = await runAlign(
        join(dir, 'parent'),
        join(dir, 'samples.jsonl'),
        cfg,
        join(dir, 'whole'),
        losses(whole),
      );
      const parts: number[] = [];
      const stop = new AbortController();
      const first = await runAlign(join(dir, 'parent'), join(dir, 'samples.jsonl'), cfg, join(dir, 'parts'), {
        onStep: (s) => {
          parts[s.step] = s.loss;
          if (s.step === 2) stop.abort();
        },
        signal: stop.signal,
      });
      expect(first.aborted).toBe(true);
      const second = await runAlign(
        join(dir, 'parent'),
        join(dir, 'samples.jsonl'),
        cfg,
        join(dir, 'parts'),
        losses(parts),
      );
      expect(parts).toEqual(whole);
      expect(second.finalEval.taskAccuracy).toBe(full.finalEval.taskAccuracy);
      expect(second.finalEval.refPerplexity).toBe(full.finalEval.refPerplexity);

      // a fork: same parent (baseline and reference), the other checkpoint's weights; a zero learning rate keeps them
      const fork = await runAlign(
        join(dir, 'parent'),
        join(dir, 'samples.jsonl'),
        { ...cfg, method: 'vft', steps: 1, optim: { ...cfg.optim, lr: 0, warmupSteps: 0 } },
        join(dir, 'fork'),
        {},
        { initFrom: join(dir, 'other') },
      );
      expect(fork.parentEval.refPerplexity).toBe(full.parentEval.refPerplexity);
      const saved = await loadCheckpoint(fork.checkpoint!.dir);
      for (const [name, w] of Object.entries(otherWeights))
        expect(Array.from(saved.weights[name]!), name).toEqual(Array.from(w));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
