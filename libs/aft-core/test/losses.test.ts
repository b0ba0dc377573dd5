import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { CONSTRAINTS, initBackend, lossAndGrads, RANKING_METHODS, type LossSpec } from '../src';
import { runLoss } from '../src/cli/loss';

beforeAll(async () => {
  await initBackend();
});

const spec = (
  method: LossSpec['method'],
  constraint: LossSpec['constraint'] = 'none',
  beta = 1,
  dpoBeta = 0.1,
): LossSpec => ({
  method,
  constraint,
  beta,
  dpoBeta,
});
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const one = (s: LossSpec, scores: number[], ranks: number[], refScores?: number[]) =>
  lossAndGrads(s, [{ scores, ranks, refScores }]);

describe('AFT (docs/architecture.md reference definitions)', () => {
  // one pair: i (rank 0) scores −1, j (rank 1) scores −2
  it('none: log(1 + e^{x_j − x_i}), pushing the better up and the worse down', async () => {
    const r = await one(spec('aft'), [-1, -2], [0, 1]);
    expect(r.loss).toBeCloseTo(Math.log(1 + Math.exp(-1)), 5);
    expect(r.grads[0]![0]).toBeCloseTo(-sigmoid(-1), 5);
    expect(r.grads[0]![1]).toBeCloseTo(sigmoid(-1), 5);
  });

  it('detach: the same value, and no gradient reaches the worse candidate', async () => {
    const r = await one(spec('aft', 'detach'), [-1, -2], [0, 1]);
    expect(r.loss).toBeCloseTo(Math.log(1 + Math.exp(-1)), 5);
    expect(r.grads[0]![1]).toBe(0);
    expect(r.grads[0]![0]).toBeCloseTo(-sigmoid(-1), 5);
  });

  it('boundary(β): hand-computed value; zero gradient on the worse score at B, opposite signs across it', async () => {
    // B = x_i − β = −2 = x_j: L = log(1 + e^{−1} + e^{x_i − 2β − x_j}) = log(1 + 2e^{−1})
    const at = await one(spec('aft', 'boundary', 1), [-1, -2], [0, 1]);
    expect(at.loss).toBeCloseTo(Math.log(1 + 2 * Math.exp(-1)), 5);
    expect(Math.abs(at.grads[0]![1]!)).toBeLessThan(1e-6);
    expect(at.grads[0]![0]).toBeCloseTo(-Math.exp(-1) / (1 + 2 * Math.exp(-1)), 5);
    const below = await one(spec('aft', 'boundary', 1), [-1, -2.5], [0, 1]);
    const above = await one(spec('aft', 'boundary', 1), [-1, -1.5], [0, 1]);
    expect(below.grads[0]![1]).toBeLessThan(0); // descent lifts it back up
    expect(above.grads[0]![1]).toBeGreaterThan(0); // descent pushes it down
  });

  it('boundary is zero-gradient at B with several better candidates too (the gradient factorises)', async () => {
    // better: −1 and −0.5 (min −1); B = −1 − 0.7 = −1.7
    const r = await one(spec('aft', 'boundary', 0.7), [-1, -0.5, -1.7], [0, 0, 1]);
    expect(Math.abs(r.grads[0]![2]!)).toBeLessThan(1e-6);
  });

  it('the unconstrained loss keeps pushing a worse score down however low it is; constraints stop that', async () => {
    for (const xj of [-5, -20, -60]) {
      expect((await one(spec('aft'), [-1, xj], [0, 1])).grads[0]![1]).toBeGreaterThan(0);
      expect((await one(spec('aft', 'detach'), [-1, xj], [0, 1])).grads[0]![1]).toBe(0);
      expect((await one(spec('aft', 'boundary', 1), [-1, xj], [0, 1])).grads[0]![1]).toBeLessThan(0);
    }
  });

  it('β → ∞ gives back the unconstrained loss', async () => {
    const free = await one(spec('aft'), [-1, -2, -3], [0, 1, 2]);
    const wide = await one(spec('aft', 'boundary', 40), [-1, -2, -3], [0, 1, 2]);
    expect(wide.loss).toBeCloseTo(free.loss, 6);
    wide.grads[0]!.forEach((g, i) => expect(g).toBeCloseTo(free.grads[0]![i]!, 6));
  });
});

describe('DPO, RRHF, PRO', () => {
  it('DPO: mean over pairs of −log σ(β_dpo(x_i − x_j)) with x = policy − reference', async () => {
    const r = await one(spec('dpo'), [-3, -5], [0, 1], [-4, -4]); // x = [1, −1]
    expect(r.loss).toBeCloseTo(Math.log(1 + Math.exp(-0.2)), 5);
    expect(r.grads[0]![0]).toBeCloseTo(-0.1 * sigmoid(-0.2), 5);
    expect(r.grads[0]![1]).toBeCloseTo(0.1 * sigmoid(-0.2), 5);
    expect((await one(spec('dpo', 'detach'), [-3, -5], [0, 1], [-4, -4])).grads[0]![1]).toBe(0);
    // boundary on the scaled reward: r = β_dpo·x = [0.1, −0.1]; B = 0.1 − 0.05 = 0.05 > −0.1 → penalty 0.15
    const b = await one(spec('dpo', 'boundary', 0.05), [-3, -5], [0, 1], [-4, -4]);
    expect(b.loss).toBeCloseTo(Math.log(1 + Math.exp(-0.2)) + 0.15, 5);
  });

  it('RRHF: Σ_pairs max(0, x_j − x_i)', async () => {
    const r = await one(spec('rrhf'), [-1, -0.5], [0, 1]);
    expect(r.loss).toBeCloseTo(0.5, 6);
    expect(r.grads[0]).toEqual([-1, 1]);
    expect((await one(spec('rrhf'), [-0.5, -1], [0, 1])).loss).toBe(0);
    // boundary: B = −0.5 − 1 = −1.5 > x_j = −2 → adds 0.5, lifting x_j
    const b = await one(spec('rrhf', 'boundary', 1), [-0.5, -2], [0, 1]);
    expect(b.loss).toBeCloseTo(0.5, 6);
    expect(b.grads[0]![1]).toBe(-1);
  });

  it('PRO: the list-wise loss, ties not competing', async () => {
    const r = await one(spec('pro'), [0, -1, -2], [0, 1, 2]);
    expect(r.loss).toBeCloseTo(Math.log(1 + Math.exp(-1) + Math.exp(-2)) + Math.log(1 + Math.exp(-1)), 5);
    // two tied positives and one negative: each positive competes only with the negative
    const t = await one(spec('pro'), [0, 0, -1], [0, 0, 1]);
    expect(t.loss).toBeCloseTo(2 * Math.log(1 + Math.exp(-1)), 5);
  });
});

describe('every method and constraint', () => {
  it('averages over the groups that have a pair; a group without one gets no gradient', async () => {
    for (const method of RANKING_METHODS) {
      const refScores = method === 'dpo' ? [0, 0] : undefined;
      const alone = await lossAndGrads(spec(method), [{ scores: [-1, -2], ranks: [0, 1], refScores }]);
      const both = await lossAndGrads(spec(method), [
        { scores: [-1, -2], ranks: [0, 1], refScores },
        { scores: [-3, -4], ranks: [1, 1], refScores },
      ]);
      expect(both.loss).toBeCloseTo(alone.loss, 6);
      expect(both.usedGroups).toBe(1);
      expect(both.grads[1]).toEqual([0, 0]);
    }
  });

  it('stays finite at extreme scores (±1e4)', async () => {
    for (const method of RANKING_METHODS) {
      for (const constraint of CONSTRAINTS) {
        for (const scores of [
          [1e4, -1e4, 0],
          [-1e4, 1e4, 0],
        ]) {
          const r = await lossAndGrads(spec(method, constraint), [
            { scores, ranks: [0, 1, 2], refScores: method === 'dpo' ? [0, 0, 0] : undefined },
          ]);
          expect(Number.isFinite(r.loss), `${method}/${constraint} ${scores}`).toBe(true);
          expect(r.grads.flat().every(Number.isFinite), `${method}/${constraint} grads`).toBe(true);
        }
      }
    }
    expect(tf.memory().numTensors).toBeLessThan(50);
  });
});

describe('aft loss (the JSON contract)', () => {
  it('computes loss and grads from JSON', async () => {
    const out = await runLoss(
      JSON.stringify({ method: 'aft', constraint: 'detach', groups: [{ scores: [-1, -2], ranks: [0, 1] }] }),
    );
    expect(out.loss).toBeCloseTo(Math.log(1 + Math.exp(-1)), 5);
    expect(out.grads[0]![1]).toBe(0);
  });
  it.each([
    ['not json', /not JSON/],
    [JSON.stringify({ method: 'ppo', groups: [{ scores: [1], ranks: [0] }] }), /method/],
    [JSON.stringify({ method: 'aft', constraint: 'soft', groups: [{ scores: [1], ranks: [0] }] }), /constraint/],
    [
      JSON.stringify({ method: 'aft', groups: [{ scores: [1, 2], ranks: [0] }] }),
      /groups\.0\.ranks: ranks must have one entry per score/,
    ],
    [JSON.stringify({ method: 'dpo', groups: [{ scores: [1, 2], ranks: [0, 1] }] }), /dpo needs refScores/],
    [JSON.stringify({ method: 'aft', beta: -1, groups: [{ scores: [1], ranks: [0] }] }), /beta/],
    [JSON.stringify({ method: 'aft', groups: [], extra: 1 }), /groups|extra/],
  ])('rejects %s', async (input, message) => {
    await expect(runLoss(input)).rejects.toThrow(message);
  });
});
