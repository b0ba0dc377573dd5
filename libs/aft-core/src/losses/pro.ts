/**
 * PRO's list-wise loss (Song et al. 2023, Eq. 5):
 *   L = Σ_{i with a worse candidate} −log( e^{x_i} / (e^{x_i} + Σ_{j worse than i} e^{x_j}) ).
 * With a strict ranking this is PRO's loss; tied candidates do not compete. Constraint (ours): `detach` stops the
 * gradient through the worse candidates' x_j in each denominator; `boundary(β)` adds Σ_pairs max(0, B_j − x_j).
 */
import * as tf from '@tensorflow/tfjs';
import { BIG, boundaryPenalty, sg, type Constraint, type PairMask } from './common';

export function proGroupLoss(x: tf.Tensor1D, { mask }: PairMask, c: Constraint): tf.Scalar {
  const M = x.shape[0];
  const xj = c.kind === 'detach' ? sg(x) : x;
  const hasWorse = tf.greater(tf.sum(mask, 1), 0); // [M] rows i with at least one worse j
  // denominator terms for row i: x_i itself, and x_j for every j worse than i
  const others = tf.where(tf.cast(mask, 'bool'), tf.tile(tf.expandDims(xj, 0), [M, 1]), tf.fill([M, M], -BIG)); // [i, j]
  const lse = tf.logSumExp(tf.concat([tf.expandDims(x, 1), others], 1), 1); // [M]
  const perI = tf.sub(lse, x); // −log softmax of x_i
  let loss = tf.sum(tf.where(hasWorse, perI, tf.zerosLike(perI))) as tf.Scalar;
  if (c.kind === 'boundary') loss = tf.add(loss, boundaryPenalty(x, mask, c.beta)) as tf.Scalar;
  return loss;
}
