import { describe, expect, it } from 'vitest';
import {
  CONSTRAINED_AFT,
  REPRODUCE_CONTROLS,
  REPRODUCE_GRID,
  summarise,
  toMarkdown,
  type RunOutcome,
} from '../src/cli/reproduce';
import { chooseOnValidation, pairedMarkdown, pairedTables, stillRising } from '../src/cli/reproduce-report';

const outcome = (name: string, seed: number, acc: number, o: Partial<RunOutcome> = {}): RunOutcome => ({
  name,
  seed,
  taskAccuracy: acc,
  assessmentAccuracy: 0.6,
  scoreGap: 0.05,
  refPerplexity: 1.2,
  malformedRate: 0,
  degraded: false,
  onsetStep: null,
  ...o,
});

describe('aft reproduce results table', () => {
  it('covers every method with and without a constraint, the β sweep and the w_nll = 0 run', () => {
    const names = REPRODUCE_GRID.map((r) => r.name);
    for (const m of ['AFT', 'DPO', 'RRHF', 'PRO']) {
      expect(names.some((n) => n.startsWith(`${m} none`))).toBe(true);
      expect(names.some((n) => n.startsWith(`${m} boundary`))).toBe(true);
    }
    expect(names.filter((n) => n.startsWith('AFT boundary β=')).length).toBeGreaterThanOrEqual(3);
    expect(names).toEqual(expect.arrayContaining(['VFT (continued)', 'RFT', 'AFT detach', 'AFT none, w_nll=0']));
    // both controls are in the grid, and the unconstrained no-NLL run also at the grid's own learning rate
    expect(names).toEqual(expect.arrayContaining(REPRODUCE_CONTROLS));
    const noNll = REPRODUCE_GRID.find((r) => r.name === 'AFT none, w_nll=0')!;
    expect(noNll.args.join(' ')).not.toMatch(/optim\.lr/);
    expect(CONSTRAINED_AFT).toEqual(['AFT detach', 'AFT boundary β=0.02', 'AFT boundary β=0.1', 'AFT boundary β=0.3']);
  });

  it('chooses the constrained variant on validation accuracy alone, whatever the test says', () => {
    const outcomes = [
      outcome('AFT detach', 1, 0.9, { valAccuracy: 0.4 }),
      outcome('AFT detach', 2, 0.9, { valAccuracy: 0.5 }),
      outcome('AFT boundary β=0.1', 1, 0.1, { valAccuracy: 0.6 }),
      outcome('AFT boundary β=0.1', 2, 0.1, { valAccuracy: 0.5 }),
    ];
    expect(chooseOnValidation(outcomes, CONSTRAINED_AFT)).toBe('AFT boundary β=0.1');
    expect(chooseOnValidation([outcome('AFT detach', 1, 0.9)], CONSTRAINED_AFT)).toBeNull();
  });

  it('flags a parent whose last three validation evaluations average more than two points above the three before', () => {
    const curve = (...accs: number[]) => accs.map((a, i) => ({ step: (i + 1) * 100, taskAccuracy: a }));
    // the last point is the test split and does not count
    expect(stillRising(curve(0.8, 0.81, 0.8, 0.83, 0.84, 0.85, 0.5))).toBe(true);
    // one question's gain at the end, on a plateau: not rising
    expect(stillRising(curve(0.92, 0.94, 0.92, 0.94, 0.93, 0.95, 0.93))).toBe(false);
    expect(stillRising(curve(0.5, 0.6, 0.7))).toBe(false); // too few evaluations to say
  });

  it('pairs every arm with each control on the same test questions per seed', () => {
    // 10 questions; per seed the arm gets questions 0–5 right, the control 0–3 (and seed 2: the arm loses question 9)
    const qs = (right: (i: number) => boolean) =>
      Array.from({ length: 10 }, (_, i) => ({ id: `q${i}`, correct: right(i), malformed: false, repetitive: false }));
    const outcomes = [1, 2].flatMap((seed) => [
      outcome('VFT (continued)', seed, 0.4, { perQuestion: qs((i) => i < 4 || (seed === 2 && i === 9)) }),
      outcome('AFT detach', seed, 0.6, { perQuestion: qs((i) => i < 6) }),
    ]);
    const [report] = pairedTables(outcomes, REPRODUCE_CONTROLS);
    expect(report!.control).toBe('VFT (continued)');
    const arm = report!.arms['AFT detach']!;
    expect(arm.perSeed.map((p) => [p.seed, p.n, p.b, p.c])).toEqual([
      [1, 10, 2, 0],
      [2, 10, 2, 1],
    ]);
    expect(arm.meanDelta).toBeCloseTo(0.15, 12);
    expect(arm.wins).toBe(2);
    const md = pairedMarkdown(report!, ['AFT detach'], 'AFT detach');
    expect(md).toContain('| AFT detach (chosen on val.) | +20.0 (2/0, 0.50); +10.0 (2/1, 1.0) | +15.0 |');
  });

  it('reports mean ± sample std over seeds and counts degraded runs with their mean onset', () => {
    const rows = summarise(
      [
        outcome('AFT none', 1, 0.4),
        outcome('AFT none', 2, 0.5),
        outcome('AFT none', 3, 0.6, { degraded: true, onsetStep: 40, assessmentAccuracy: null }),
        outcome('RFT', 1, 0.3, { degraded: true, onsetStep: 20 }),
        outcome('RFT', 2, 0.3, { degraded: true, onsetStep: 60 }),
      ],
      ['RFT', 'AFT none', 'DPO none'],
    );
    expect(rows.map((r) => r.name)).toEqual(['RFT', 'AFT none']);
    expect(rows[1]!.taskAccuracy.mean).toBeCloseTo(0.5, 10);
    expect(rows[1]!.taskAccuracy.std).toBeCloseTo(0.1, 10);
    expect(rows[1]!.assessmentAccuracy!.mean).toBeCloseTo(0.6, 10); // the missing one is left out
    expect(rows[1]!.degraded).toBe('1/3 (step 40)');
    expect(rows[0]!.degraded).toBe('2/2 (step 40)');
    const md = toMarkdown(rows);
    expect(md.split('\n')).toHaveLength(4);
    expect(md).toContain(
      '| AFT none | 3 | 50.0 ± 10.0 | — | — | 60.0 ± 0.0 / — | 0.050 ± 0.000 | 1.200 ± 0.000 | 0.0 ± 0.0 | — | 1/3 (step 40) |',
    );
  });
});
