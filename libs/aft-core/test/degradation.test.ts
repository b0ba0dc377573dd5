import { describe, expect, it } from 'vitest';
import {
  alphaAtLook,
  detectDegradation,
  DEGRADATION_DEFAULTS,
  Rng,
  UNSAMPLED,
  type EvalReport,
  type QuestionOutcome,
} from '../src';

const N = 100;
const outcome = (i: number, o: Partial<QuestionOutcome> = {}): QuestionOutcome => ({
  id: `q${i}`,
  correct: false,
  malformed: false,
  repetitive: false,
  ...o,
});

/** A report whose aggregate rates are computed from its per-question outcomes, as `evaluate` does. */
function report(perQuestion: QuestionOutcome[], refPerplexity = 1.2): EvalReport {
  const rate = (f: (q: QuestionOutcome) => boolean) => perQuestion.filter(f).length / perQuestion.length;
  const broken = rate((q) => q.malformed) > 0.5;
  return {
    questions: perQuestion.length,
    taskAccuracy: rate((q) => q.correct),
    malformedRate: rate((q) => q.malformed),
    repetitionRate: rate((q) => q.repetitive),
    refPerplexity,
    ...UNSAMPLED,
    examples: [{ id: 'q0', question: 'q?', output: broken ? '1111111' : '2+2=4\n#### 4', correct: !broken }],
    perQuestion,
  };
}

/** The parent: the first `correct` of N questions right, every answer well formed. */
const parentOutcomes = (correct: number) => Array.from({ length: N }, (_, i) => outcome(i, { correct: i < correct }));

/**
 * A run that only differs from the parent by noise: each question flips with probability `flip`, in both
 * directions at rates that keep the expected accuracy the parent's.
 */
function noisy(parent: QuestionOutcome[], flip: number, rng: Rng): QuestionOutcome[] {
  const acc = parent.filter((q) => q.correct).length / parent.length;
  const up = (flip * acc) / (1 - acc);
  return parent.map((q) => ({ ...q, correct: rng.next() < (q.correct ? 1 - flip : up) }));
}

describe('detectDegradation', () => {
  const parentQs = parentOutcomes(40);
  const parent = report(parentQs);

  it('finds the first evaluation with evidence, naming each signal with its paired counts', () => {
    const collapsed = parentQs.map((q) => ({ ...q, correct: false, malformed: true, repetitive: true }));
    const evals = [
      {
        step: 20,
        report: report(
          parentQs.map((q, i) => (i === 0 ? { ...q, correct: false } : q)),
          1.25,
        ),
      },
      { step: 40, report: report(collapsed, 1.6) },
      { step: 60, report: report(collapsed, 50) },
    ];
    const d = detectDegradation(evals, parent);
    expect(d).toMatchObject({ degraded: true, onsetStep: 40 });
    expect(d.evidence.map((e) => e.signal).sort()).toEqual([
      'accuracyDrop',
      'malformedRate',
      'pplRatio',
      'repetitionRate',
    ]);
    expect(d.evidence.find((e) => e.signal === 'pplRatio')!.value).toBeCloseTo(1.6 / 1.2, 6);
    const acc = d.evidence.find((e) => e.signal === 'accuracyDrop')!;
    expect(acc).toMatchObject({ worse: 40, better: 0, value: 0.4, parent: 0.4 });
    expect(acc.p).toBeCloseTo(2 ** -40, 20);
    expect(acc.alphaSpent).toBeCloseTo(alphaAtLook(0.05, 2) / 3, 12);
    expect(d.before[0]!.output).toBe('2+2=4\n#### 4');
    expect(d.after[0]!.output).toBe('1111111');
  });

  it('does not cry wolf on a drop the old fixed limit flagged: 12 points on 100 questions, 20 vs 8 discordant', () => {
    // 20 questions lost, 8 gained: a 12-point drop, past the old 10-point limit, but p = P(X ≥ 20 | 28) ≈ 0.018
    const run = parentQs.map((q, i) =>
      i < 20 ? { ...q, correct: false } : i >= 40 && i < 48 ? { ...q, correct: true } : q,
    );
    expect(detectDegradation([{ step: 20, report: report(run) }], parent).degraded).toBe(false);
    // the same counts tested at a looser α are evidence: the decision is the test's, not the limit's
    const loose = detectDegradation([{ step: 20, report: report(run) }], parent, { alpha: 0.2 });
    expect(loose.evidence.map((e) => e.signal)).toEqual(['accuracyDrop']);
  });

  it('raises no alarm on noise only: false alarms over 500 runs of 6 evaluations stay under α', () => {
    const rng = new Rng(7);
    let alarms = 0;
    const runs = 500;
    for (let r = 0; r < runs; r++) {
      const evals = Array.from({ length: 6 }, (_, k) => ({
        step: 20 * (k + 1),
        report: report(noisy(parentQs, 0.15, rng)),
      }));
      if (detectDegradation(evals, parent).degraded) alarms++;
    }
    expect(alarms / runs).toBeLessThanOrEqual(DEGRADATION_DEFAULTS.alpha);
  });

  it('alarms at the first evaluation on a real drop (half the parent’s right answers lost, amid noise)', () => {
    const rng = new Rng(11);
    for (let r = 0; r < 50; r++) {
      const dropped = noisy(parentQs, 0.05, rng).map((q, i) => (i < 40 && i % 2 === 0 ? { ...q, correct: false } : q));
      const evals = [20, 40].map((step) => ({ step, report: report(dropped) }));
      const d = detectDegradation(evals, parent);
      expect(d).toMatchObject({ degraded: true, onsetStep: 20 });
    }
  });

  it('judges rates against the parent’s own, question by question', () => {
    const sloppy = parentQs.map((q, i) => ({ ...q, malformed: i >= 70, repetitive: i >= 80 }));
    const same = detectDegradation([{ step: 10, report: report(sloppy) }], report(sloppy));
    expect(same.degraded).toBe(false);
    const worse = sloppy.map((q, i) => (i >= 40 ? { ...q, malformed: true } : q));
    const d = detectDegradation([{ step: 10, report: report(worse) }], report(sloppy));
    expect(d.evidence.map((e) => e.signal)).toEqual(['malformedRate']);
    expect(d.evidence[0]).toMatchObject({ worse: 30, better: 0, parent: 0.3 });
  });

  it('leaves a signal out where a parent evaluation from an older checkpoint does not record it', () => {
    // written before outcomes carried malformed/repetitive: only id and correct
    const old = report(parentQs.map(({ id, correct }) => ({ id, correct }) as QuestionOutcome));
    const sloppy = parentQs.map((q, i) => ({ ...q, malformed: i >= 50, repetitive: i >= 50 }));
    expect(detectDegradation([{ step: 10, report: report(sloppy) }], old).degraded).toBe(false);
    const dropped = sloppy.map((q) => ({ ...q, correct: false }));
    const d = detectDegradation([{ step: 10, report: report(dropped) }], old);
    expect(d.evidence.map((e) => e.signal)).toEqual(['accuracyDrop']);
  });

  it('needs a change past the floor as well as significance', () => {
    const run = parentQs.map((q, i) => (i < 12 ? { ...q, correct: false } : q));
    expect(detectDegradation([{ step: 5, report: report(run) }], parent).degraded).toBe(true);
    expect(detectDegradation([{ step: 5, report: report(run) }], parent, { accuracyDrop: 0.15 }).degraded).toBe(false);
  });

  it('treats a non-finite perplexity as degradation whatever the limit', () => {
    const d = detectDegradation([{ step: 5, report: report(parentQs, Infinity) }], parent, { pplRatio: Infinity });
    expect(d.degraded).toBe(true);
    expect(d.evidence).toEqual([{ signal: 'pplRatio', value: Infinity, limit: Infinity, parent: 1 }]);
  });

  it('spends at most α over any number of looks', () => {
    let total = 0;
    for (let k = 1; k <= 100_000; k++) total += alphaAtLook(0.05, k);
    expect(total).toBeLessThanOrEqual(0.05);
    expect(total).toBeGreaterThan(0.0499);
  });
});
