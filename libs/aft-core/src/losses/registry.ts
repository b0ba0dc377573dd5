/**
 * The registry of ranking losses: each ranking method of the spec (spec.ts, RANKING_METHODS) maps to a pure function
 * of one group's scores and ranks. Every method takes the same constraint option. `groupsLoss` averages over the
 * groups that have at least one pair (a group with no pair contributes nothing) — the contract `aft loss` exposes so
 * other implementations can be checked against it.
 */
import * as tf from '@tensorflow/tfjs';
import { CONSTRAINTS, isRankingMethod, RANKING_METHODS, type ConstraintName, type RankingMethod } from '../spec';
import { aftGroupLoss } from './aft';
import { pairMask, type Constraint, type PairMask } from './common';
import { dpoGroupLoss } from './dpo';
import { proGroupLoss } from './pro';
import { rrhfGroupLoss } from './rrhf';

export interface LossSpec {
  method: RankingMethod;
  constraint: ConstraintName;
  /** Boundary margin β. */
  beta: number;
  /** DPO's β (the implicit reward's scale). */
  dpoBeta: number;
}

export interface ScoredGroup {
  /** [M] the method's score of each candidate: mean log-likelihood (AFT, RRHF, PRO) or summed (DPO). */
  scores: tf.Tensor1D;
  ranks: readonly number[];
  /** [M] DPO only: summed log-probabilities under the frozen reference model. */
  refScores?: tf.Tensor1D;
}

type GroupLoss = (g: ScoredGroup, m: PairMask, c: Constraint, spec: LossSpec) => tf.Scalar;

/** One loss per ranking method: a spec method without one here, or one here not in the spec, fails to compile. */
export const LOSSES: Readonly<Record<RankingMethod, GroupLoss>> = {
  aft: (g, m, c) => aftGroupLoss(g.scores, m, c),
  rrhf: (g, m, c) => rrhfGroupLoss(g.scores, m, c),
  pro: (g, m, c) => proGroupLoss(g.scores, m, c),
  dpo: (g, m, c, s) => {
    if (!g.refScores)
      throw new Error('dpo needs refScores (the frozen reference model’s log-probabilities) for every group');
    return dpoGroupLoss(g.scores, g.refScores, m, c, s.dpoBeta);
  },
};

export function getLoss(name: string): GroupLoss {
  if (!isRankingMethod(name)) throw new Error(`unknown loss "${name}"; valid losses: ${RANKING_METHODS.join(', ')}`);
  return LOSSES[name];
}

export function checkSpec(spec: LossSpec): LossSpec {
  getLoss(spec.method);
  if (!(CONSTRAINTS as readonly string[]).includes(spec.constraint)) {
    throw new Error(`unknown constraint "${spec.constraint}"; valid constraints: ${CONSTRAINTS.join(', ')}`);
  }
  if (!(spec.beta >= 0) || !Number.isFinite(spec.beta))
    throw new Error(`beta must be a finite number >= 0, got ${spec.beta}`);
  if (!(spec.dpoBeta > 0) || !Number.isFinite(spec.dpoBeta))
    throw new Error(`dpoBeta must be a finite number > 0, got ${spec.dpoBeta}`);
  return spec;
}

/** The method's loss averaged over the groups that have a pair; 0 (with zero gradient) when none has. */
export function groupsLoss(spec: LossSpec, groups: readonly ScoredGroup[]): { loss: tf.Scalar; usedGroups: number } {
  const fn = getLoss(spec.method);
  const c: Constraint = { kind: spec.constraint, beta: spec.beta };
  const parts: tf.Scalar[] = [];
  for (const g of groups) {
    const m = pairMask(g.ranks);
    if (m.pairs > 0) parts.push(fn(g, m, c, spec));
  }
  if (!parts.length) return { loss: tf.scalar(0), usedGroups: 0 };
  return { loss: tf.div(tf.addN(parts), parts.length) as tf.Scalar, usedGroups: parts.length };
}

/**
 * What `aft loss` prints: the loss and its gradient with respect to every score (TensorFlow.js autodiff through
 * the same code the trainer uses). Async: it reads with `data()`, as a synchronous read is impossible on
 * tfjs-webgpu in Node (docs/architecture.md "Data and backends").
 */
export async function lossAndGrads(
  spec: LossSpec,
  groups: readonly { scores: number[]; ranks: number[]; refScores?: number[] }[],
): Promise<{ loss: number; grads: number[][]; usedGroups: number }> {
  checkSpec(spec);
  const sizes = groups.map((g) => g.scores.length);
  const flat = tf.tensor1d(groups.flatMap((g) => g.scores));
  let used = 0;
  const { value, grad } = tf.valueAndGrad((all: tf.Tensor) => {
    const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
    const r = groupsLoss(
      spec,
      groups.map((g, i) => ({
        scores: tf.slice(all as tf.Tensor1D, [offsets[i]!], [sizes[i]!]),
        ranks: g.ranks,
        refScores: g.refScores ? tf.tensor1d(g.refScores) : undefined,
      })),
    );
    used = r.usedGroups;
    return r.loss;
  })(flat);
  const loss = (await value.data())[0]!;
  const g = Array.from(await grad.data());
  tf.dispose([value, grad, flat]);
  const grads: number[][] = [];
  let o = 0;
  for (const n of sizes) {
    grads.push(g.slice(o, o + n));
    o += n;
  }
  return { loss, grads, usedGroups: used };
}
