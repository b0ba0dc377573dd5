import { describe, expect, it } from 'vitest';
import { MAX_SWEEP_RUNS, planSweep, sweepSpec } from '../src';

const spec = (extra: Record<string, unknown> = {}) => ({ name: 's', project: 'p', ...extra });
const errorOf = (input: unknown) => {
  const r = sweepSpec.safeParse(input);
  if (r.success) throw new Error('expected the spec to be rejected');
  return r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
};

describe('planSweep', () => {
  it('shares one VFT parent and one sample set among runs that agree on them', () => {
    const plan = planSweep(
      sweepSpec.parse(spec({ axes: { method: ['aft', 'dpo', 'pro'], constraint: ['none', 'boundary'] } })),
    );
    expect(plan.parents).toHaveLength(1);
    expect(plan.parents[0]!.config.sampling).toEqual([{ k: 8, temperature: 0.8, questions: 500 }]);
    expect(plan.runs.map((r) => r.name)).toEqual([
      'aft-none-s1',
      'aft-boundary-b0.1-s1',
      'dpo-none-s1',
      'dpo-boundary-b0.1-s1',
      'pro-none-s1',
      'pro-boundary-b0.1-s1',
    ]);
    expect(new Set(plan.runs.map((r) => r.parentKey)).size).toBe(1);
  });

  it('gives each seed and preset its own parent, and each k its own sample set on the same parent', () => {
    const plan = planSweep(sweepSpec.parse(spec({ axes: { seed: [1, 2], k: [4, 8] } })));
    expect(plan.parents.map((p) => p.config.seed)).toEqual([1, 2]);
    expect(plan.parents[0]!.config.sampling.map((s) => s.k)).toEqual([4, 8]);
    expect(plan.runs).toHaveLength(4);
  });

  it('never trains the same run twice: β only varies a boundary, constraints do not apply to fine-tuning', () => {
    const plan = planSweep(
      sweepSpec.parse(
        spec({ axes: { method: ['vft', 'aft'], constraint: ['none', 'detach', 'boundary'], beta: [0.5, 1, 2] } }),
      ),
    );
    // vft: 1 run; aft: none + detach + 3 boundaries
    expect(plan.runs.map((r) => r.name)).toEqual([
      'vft-s1',
      'aft-none-s1',
      'aft-detach-s1',
      'aft-boundary-b0.5-s1',
      'aft-boundary-b1-s1',
      'aft-boundary-b2-s1',
    ]);
  });

  it('samples a random search without repeats, the same for the same seed', () => {
    const s = spec({
      axes: { lr: [1e-4, 3e-4, 1e-3], beta: [0.5, 1, 2], seed: [1, 2] },
      search: { kind: 'random', count: 5, seed: 9 },
    });
    const a = planSweep(sweepSpec.parse(s)).runs.map((r) => r.name);
    const b = planSweep(sweepSpec.parse(s)).runs.map((r) => r.name);
    expect(a).toHaveLength(5);
    expect(new Set(a).size).toBe(5);
    expect(a).toEqual(b);
  });

  it('samples a random search from a 64⁴ grid without expanding it', () => {
    const values = (f: (i: number) => number) => Array.from({ length: 64 }, (_, i) => f(i));
    const axes = {
      lr: values((i) => (i + 1) / 1e5),
      beta: values((i) => i / 8),
      seed: values((i) => i),
      k: values((i) => i + 1),
    };
    const s = sweepSpec.parse(spec({ axes, search: { kind: 'random', count: MAX_SWEEP_RUNS, seed: 7 } }));
    const t0 = performance.now();
    const runs = planSweep(s).runs;
    // expanding the 16.8M-point grid took ~100 s and ~9 GB; sampling takes milliseconds
    expect(performance.now() - t0).toBeLessThan(2_000);
    expect(runs).toHaveLength(MAX_SWEEP_RUNS);
    expect(new Set(runs.map((r) => JSON.stringify(r.config))).size).toBe(MAX_SWEEP_RUNS);
    expect(planSweep(s).runs.map((r) => r.name)).toEqual(runs.map((r) => r.name));
  });

  it('samples distinct runs when axis values repeat or settings collapse', () => {
    // vft ignores constraint and β: the 2 × 3 × 3 × 4 raw grid trains only 2 × 2 distinct runs
    const s = spec({
      axes: { method: ['vft', 'aft'], constraint: ['none', 'none', 'detach'], beta: [1, 2, 3], seed: [1, 1, 2, 2] },
      search: { kind: 'random', count: 50, seed: 3 },
    });
    const runs = planSweep(sweepSpec.parse(s)).runs.map((r) => r.name);
    expect(new Set(runs).size).toBe(runs.length);
    expect([...runs].sort()).toEqual([
      'aft-detach-s1',
      'aft-detach-s2',
      'aft-none-s1',
      'aft-none-s2',
      'vft-s1',
      'vft-s2',
    ]);
  });

  it('crosses explicit points with the axes', () => {
    const plan = planSweep(
      sweepSpec.parse(
        spec({
          points: [
            { method: 'aft', constraint: 'detach' },
            { method: 'dpo', constraint: 'none' },
          ],
          axes: { seed: [1, 2] },
        }),
      ),
    );
    expect(plan.runs.map((r) => r.name)).toEqual(['aft-detach-s1', 'aft-detach-s2', 'dpo-none-s1', 'dpo-none-s2']);
  });
});

describe('sweepSpec rejects', () => {
  it('an unknown method, naming the axis and the accepted methods', () => {
    expect(errorOf(spec({ axes: { method: ['aft', 'ppo'] } }))).toMatch(
      /^axes\.method\.1: a method is one of vft, rft, aft, dpo, rrhf, pro/,
    );
  });
  it('a negative learning rate', () => {
    expect(errorOf(spec({ axes: { lr: [-1e-3] } }))).toMatch(/^axes\.lr\.0: lr must be > 0/);
    expect(errorOf(spec({ base: { lr: -1 } }))).toMatch(/^base\.lr: lr must be > 0/);
  });
  it('an empty axis', () => {
    expect(errorOf(spec({ axes: { beta: [] } }))).toMatch(/^axes\.beta: axes\.beta is empty/);
  });
  it('k = 0', () => {
    expect(errorOf(spec({ axes: { k: [0, 8] } }))).toMatch(/^axes\.k\.0: k must be at least 1/);
    expect(errorOf(spec({ base: { k: 0 } }))).toMatch(/^base\.k: k must be at least 1/);
  });
  it('a grid larger than allowed, saying how large it is', () => {
    const big = {
      lr: [1, 2, 3, 4, 5, 6, 7, 8].map((x) => x / 1e4),
      beta: [0.1, 0.2, 0.5, 1, 2, 4, 8, 16],
      seed: [1, 2, 3, 4, 5],
    };
    expect(errorOf(spec({ axes: big }))).toMatch(
      new RegExp(`^axes: the grid has 320 runs; a sweep holds at most ${MAX_SWEEP_RUNS}`),
    );
  });
  it('a random search over a grid too large to index, naming the axes', () => {
    const values = Array.from({ length: 64 }, (_, i) => i + 1);
    const axes = {
      seed: values,
      k: values,
      lr: values.map((v) => v / 1e3),
      beta: values,
      temperature: values.map((v) => v / 32),
      method: ['vft', 'rft', 'aft', 'dpo', 'rrhf', 'pro'],
      constraint: ['none', 'detach', 'boundary'],
      preset: ['tiny', 'small'],
    };
    const points = Array.from({ length: 30 }, () => ({}));
    expect(errorOf(spec({ axes, points, search: { kind: 'random', count: 10 } }))).toMatch(
      /^axes: the grid has 1\.16e\+12 runs; a random search samples from at most 1e\+12/,
    );
  });
  it('unknown fields and a random count beyond the grid', () => {
    expect(errorOf(spec({ axes: { learningRate: [1] } }))).toMatch(/learningRate/);
    expect(errorOf(spec({ axes: { seed: [1, 2] }, search: { kind: 'random', count: 3 } }))).toMatch(
      /^search\.count: search\.count is 3 but the axes give only 2/,
    );
  });
});
