import { describe, expect, it } from 'vitest';
import { compareRuns, mcnemarExact, pairedComparison, type CorrectnessRow, type OutcomeRun } from '../src/stats';

/** A run answering questions q0…q{n−1}, right where `right(i)`. */
function run(id: string, arm: string, seed: number, n: number, right: (i: number) => boolean): OutcomeRun {
  return {
    id,
    arm,
    seed,
    questionIds: Array.from({ length: n }, (_, i) => `q${i}`),
    correct: Uint8Array.from({ length: n }, (_, i) => (right(i) ? 1 : 0)),
  };
}

describe('compareRuns', () => {
  it('pairs seed by seed with a control run per seed, like the rows it stands for', () => {
    const runs = [
      run('c1', 'ctl', 1, 100, (i) => i < 50),
      run('c2', 'ctl', 2, 100, (i) => i < 40),
      run('a1', 'aft', 1, 100, (i) => i < 60), // b 10, c 0
      run('a2', 'aft', 2, 100, (i) => i >= 5 && i < 50), // b 10, c 5
      run('a3', 'aft', 3, 100, () => true), // no control run of seed 3
      run('d9', 'dpo', 9, 100, () => true),
    ];
    const r = compareRuns(runs, 'ctl', { seed: 1 });
    const a = r.arms['aft']!;
    expect(a.perSeed).toEqual([
      { seed: 1, n: 100, delta: 0.1, b: 10, c: 0, p: mcnemarExact(10, 0), runId: 'a1', controlRunId: 'c1' },
      { seed: 2, n: 100, delta: 0.05, b: 10, c: 5, p: mcnemarExact(10, 5), runId: 'a2', controlRunId: 'c2' },
    ]);
    expect(a.meanDelta).toBeCloseTo(0.075, 12);
    expect(a).toMatchObject({ wins: 2, seeds: 2 });
    expect(r.unpaired).toEqual(['dpo']);
    expect(r.singleControl).toBe(false);
    // the control's two runs differ by 10 questions of 100, either way
    expect(r.noise).toEqual({ lo: -0.1, hi: 0.1, pairs: 1 });

    // the same statistic as the correctness rows of the same runs
    const rows: CorrectnessRow[] = runs.flatMap((x) =>
      x.questionIds.map((questionId, i) => ({ seed: x.seed, arm: x.arm, questionId, correct: x.correct[i] === 1 })),
    );
    const fromRows = pairedComparison(rows, 'ctl', { seed: 1 }).arms['aft']!;
    expect({ ...a, perSeed: a.perSeed.map(({ runId: _r, controlRunId: _c, ...s }) => s) }).toEqual(fromRows);
  });

  it('pairs every seed with a control that is one run, and has no noise band then', () => {
    const r = compareRuns(
      [
        run('base', 'baseline', 0, 50, (i) => i < 20),
        run('a1', 'aft', 1, 50, (i) => i < 25),
        run('a2', 'aft', 2, 40, (i) => i < 30),
      ],
      'baseline',
    );
    expect(r.singleControl).toBe(true);
    expect(r.noise).toBeNull();
    expect(r.arms['aft']!.perSeed.map((s) => [s.seed, s.n, s.b, s.c, s.controlRunId])).toEqual([
      [1, 50, 5, 0, 'base'],
      [2, 40, 10, 0, 'base'],
    ]);
    expect(() => compareRuns([run('a1', 'aft', 1, 5, () => true)], 'vft')).toThrow(/control arm "vft" has no runs/);
  });
});
