/**
 * DPO (Rafailov et al. 2023, Eq. 7), over every pair of a group:
 *   x_i = s^sum_i − ref_i (summed log-probability under the policy minus under the frozen reference, the VFT parent)
 *   L = mean_pairs −log σ(β_dpo · (x_i − x_j)).
 * Constraint (ours — the paper shows a constraint matters for DPO but does not publish its form): `detach` stops the
 * gradient through the worse candidate's x_j; `boundary(β)` adds mean_pairs max(0, B_j − β_dpo·x_j) on the scaled
 * implicit reward, with B_j = sg(min over better i of β_dpo·x_i) − β.
 */
import * as tf from '@tensorflow/tfjs';
import { boundary, diffs, sg, type Constraint, type PairMask } from './common';

export function dpoGroupLoss(
  scores: tf.Tensor1D,
  refScores: tf.Tensor1D,
  { mask, pairs }: PairMask,
  c: Constraint,
  dpoBeta: number,
): tf.Scalar {
  const x = tf.sub(scores, refScores) as tf.Tensor1D;
  const xj = c.kind === 'detach' ? sg(x) : x;
  const d = diffs(x, xj); // [i, j] = x_j − x_i
  // −log σ(β(x_i − x_j)) = softplus(β(x_j − x_i))
  let loss = tf.div(tf.sum(tf.mul(tf.softplus(tf.mul(dpoBeta, d)), mask)), pairs) as tf.Scalar;
  if (c.kind === 'boundary') {
    const r = tf.mul(dpoBeta, x) as tf.Tensor1D;
    const B = boundary(r, mask, c.beta);
    const pen = tf.sum(tf.mul(tf.relu(tf.sub(B, r)), tf.sum(mask, 0)));
    loss = tf.add(loss, tf.div(pen, pairs)) as tf.Scalar;
  }
  return loss;
}
