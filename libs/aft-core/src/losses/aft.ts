/**
 * AFT's alignment loss (Wang et al. 2023, §4), generalised from (positive, negative) to ranked groups.
 *
 * - none (the paper's L_A, Eq. 4): L = log(1 + Σ_pairs exp(x_j − x_i)), computed as softplus(logsumexp(·)).
 *   Alone it pushes worse COTs down without bound: the run that degrades.
 * - detach (the paper's detached constraint, §4.2): the same value with sg(x_j) — no gradient reaches a worse
 *   candidate, only better ones are pushed up.
 * - boundary(β) (the paper's boundary constraint, §4.3): with B_j = sg(min_{i better than j} x_i) − β and
 *   T_ij = 2·B_j − sg(x_i), L = log(1 + Σ_pairs [exp(x_j − x_i) + exp(T_ij − x_j)]). The gradient on x_j is
 *   Σ_i e^{−x_i}(e^{x_j} − e^{2B_j − x_j}), zero exactly at x_j = B_j, so worse COTs settle β below the worst
 *   better one; β → ∞ gives back `none`.
 */
import * as tf from '@tensorflow/tfjs';
import { diffs, maskedLogSumExp, boundary, sg, type Constraint, type PairMask } from './common';

export function aftGroupLoss(x: tf.Tensor1D, { mask }: PairMask, c: Constraint): tf.Scalar {
  const xj = c.kind === 'detach' ? sg(x) : x;
  const d = diffs(x, xj); // [i, j] = x_j − x_i
  if (c.kind !== 'boundary') return tf.softplus(maskedLogSumExp(d, mask)) as tf.Scalar;
  const B = boundary(x, mask, c.beta); // [M] indexed by j
  const T = tf.sub(tf.mul(2, tf.expandDims(B, 0)), tf.expandDims(sg(x), 1)); // [i, j] = 2·B_j − sg(x_i)
  const back = tf.sub(T, tf.expandDims(x, 0)); // T_ij − x_j
  return tf.softplus(maskedLogSumExp(tf.concat([d, back], 0), tf.concat([mask, mask], 0))) as tf.Scalar;
}
