/**
 * RRHF's ranking loss (Yuan et al. 2023, Eq. 2): L = Σ_pairs max(0, x_j − x_i) on length-normalised scores.
 * Constraint (ours): `detach` stops the gradient through x_j; `boundary(β)` adds Σ_pairs max(0, B_j − x_j).
 */
import * as tf from '@tensorflow/tfjs';
import { boundaryPenalty, diffs, sg, type Constraint, type PairMask } from './common';

export function rrhfGroupLoss(x: tf.Tensor1D, { mask }: PairMask, c: Constraint): tf.Scalar {
  const xj = c.kind === 'detach' ? sg(x) : x;
  let loss = tf.sum(tf.mul(tf.relu(diffs(x, xj)), mask)) as tf.Scalar;
  if (c.kind === 'boundary') loss = tf.add(loss, boundaryPenalty(x, mask, c.beta)) as tf.Scalar;
  return loss;
}
