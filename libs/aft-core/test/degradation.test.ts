import { describe, expect, it } from 'vitest';
import { detectDegradation, type EvalReport } from '../src';

const report = (o: Partial<EvalReport>): EvalReport => ({
  questions: 100,
  taskAccuracy: 0.4,
  malformedRate: 0,
  repetitionRate: 0,
  refPerplexity: 1.2,
  assessmentAccuracy: null,
  assessedQuestions: 0,
  pairs: 0,
  meanPositiveScore: null,
  meanNegativeScore: null,
  scoreGap: null,
  examples: [
    { id: 'q', question: 'q?', output: o.malformedRate ? '1111111' : '2+2=4\n#### 4', correct: !o.malformedRate },
  ],
  perQuestion: [],
  ...o,
});

describe('detectDegradation', () => {
  const parent = report({});

  it('finds the first evaluation past a limit, with its evidence and generations before and after', () => {
    const evals = [
      { step: 20, report: report({ refPerplexity: 1.25 }) },
      { step: 40, report: report({ refPerplexity: 1.6, malformedRate: 0.3, taskAccuracy: 0.1 }) },
      { step: 60, report: report({ refPerplexity: 50, malformedRate: 1, taskAccuracy: 0 }) },
    ];
    const d = detectDegradation(evals, parent);
    expect(d.degraded).toBe(true);
    expect(d.onsetStep).toBe(40);
    expect(d.evidence.map((e) => e.signal).sort()).toEqual(['accuracyDrop', 'malformedRate', 'pplRatio']);
    expect(d.evidence.find((e) => e.signal === 'pplRatio')!.value).toBeCloseTo(1.6 / 1.2, 6);
    expect(d.before[0]!.output).toBe('2+2=4\n#### 4');
    expect(d.after[0]!.output).toBe('1111111');
  });

  it('keeps a healthy run healthy, and honours configured limits', () => {
    const evals = [{ step: 20, report: report({ refPerplexity: 1.3, taskAccuracy: 0.35 }) }];
    expect(detectDegradation(evals, parent).degraded).toBe(false);
    const strict = detectDegradation(evals, parent, { pplRatio: 1.05, accuracyDrop: 0.01 });
    expect(strict).toMatchObject({ degraded: true, onsetStep: 20 });
  });

  it('judges rates against the parent’s own, not in absolute terms', () => {
    const sloppyParent = report({ malformedRate: 0.3, repetitionRate: 0.2 });
    const same = [{ step: 10, report: report({ malformedRate: 0.32, repetitionRate: 0.22 }) }];
    expect(detectDegradation(same, sloppyParent).degraded).toBe(false);
    const worse = [{ step: 10, report: report({ malformedRate: 0.5, repetitionRate: 0.2 }) }];
    expect(detectDegradation(worse, sloppyParent).evidence.map((e) => e.signal)).toEqual(['malformedRate']);
  });

  it('treats a non-finite perplexity as degradation', () => {
    const d = detectDegradation([{ step: 5, report: report({ refPerplexity: Infinity }) }], parent, {
      pplRatio: Infinity,
    });
    expect(d.degraded).toBe(true);
  });
});
