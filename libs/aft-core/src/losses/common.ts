/**
 * Shared pieces of the ranking losses (docs/architecture.md, "Scores and losses").
 *
 * A group is one question's candidates: scores x [M] and integer ranks r [M] (lower is better; binary feedback
 * uses 0 for correct, 1 for incorrect). A pair (i, j) is any two candidates with r_i < r_j (i better than j).
 * Pairs are handled as an [M, M] mask over broadcast differences, so every operation has a gradient on wasm
 * (Gather's gradient has no wasm kernel).
 */
import * as tf from '@tensorflow/tfjs';
import type { ConstraintName } from '../spec';

export interface Constraint {
  kind: ConstraintName;
  /** The boundary's margin β (boundary only). */
  beta: number;
}

/** Stop-gradient: the value passes, no gradient flows back (tfjs has no built-in). */
export const sg = tf.customGrad((x) => ({
  value: tf.clone(x as tf.Tensor),
  gradFunc: (dy) => tf.zerosLike(dy as tf.Tensor),
})) as unknown as <T extends tf.Tensor>(x: T) => T;

/** Large finite stand-in for ±∞ in masked reductions (∞ would turn gradients into NaN). */
export const BIG = 1e9;

export interface PairMask {
  /** [M, M] 1 where r_i < r_j (row i better than column j), else 0. */
  mask: tf.Tensor2D;
  pairs: number;
}

export function pairMask(ranks: readonly number[]): PairMask {
  const M = ranks.length;
  const data = new Float32Array(M * M);
  let pairs = 0;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < M; j++) {
      if (ranks[i]! < ranks[j]!) {
        data[i * M + j] = 1;
        pairs++;
      }
    }
  }
  return { mask: tf.tensor2d(data, [M, M]), pairs };
}

/** [M, M] with entry (i, j) = x_j − x_i. */
export function diffs(xi: tf.Tensor1D, xj: tf.Tensor1D): tf.Tensor2D {
  return tf.sub(tf.expandDims(xj, 0), tf.expandDims(xi, 1)) as tf.Tensor2D;
}

/** log Σ over the masked entries of z (the entries outside the mask contribute nothing). */
export function maskedLogSumExp(z: tf.Tensor, mask: tf.Tensor): tf.Scalar {
  return tf.logSumExp(tf.where(tf.cast(mask, 'bool'), z, tf.fill(z.shape, -BIG)));
}

/**
 * B_j = sg(min over i better than j of x_i) − β, for every candidate j that has a better one ([M]; a candidate with
 * none gets +BIG, never used). Worse candidates are held β below the worst better one.
 */
export function boundary(x: tf.Tensor1D, mask: tf.Tensor2D, beta: number): tf.Tensor1D {
  const M = x.shape[0];
  const better = tf.where(tf.cast(mask, 'bool'), tf.tile(tf.expandDims(x, 1), [1, M]), tf.fill([M, M], BIG)); // [i, j]
  return tf.sub(sg(tf.min(better, 0) as tf.Tensor1D), beta);
}

/** Σ_pairs max(0, B_j − x_j): lifts a worse candidate once it falls below its boundary. */
export function boundaryPenalty(x: tf.Tensor1D, mask: tf.Tensor2D, beta: number): tf.Scalar {
  const B = boundary(x, mask, beta);
  const perJ = tf.relu(tf.sub(B, x)); // [M]
  const pairsPerJ = tf.sum(mask, 0); // [M] how many better candidates each j has
  return tf.sum(tf.mul(perJ, pairsPerJ));
}
