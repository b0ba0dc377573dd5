import { describe, expect, it } from 'vitest';
import { REPRODUCE_GRID, summarise, toMarkdown, type RunOutcome } from '../src/cli/reproduce';

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
      '| AFT none | 3 | 50.0 ± 10.0 | 60.0 ± 0.0 | 0.050 ± 0.000 | 1.200 ± 0.000 | 0.0 ± 0.0 | 1/3 (step 40) |',
    );
  });
});
