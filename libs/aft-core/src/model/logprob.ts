/**
 * The one log-probability primitive every loss and score is built on: per-token log p(target | prefix) from the
 * model's logits, summed per sequence over the weighted (response) positions.
 */
import * as tf from '@tensorflow/tfjs';
import type { TokenBatch } from '../data/batch';
import type { GPT } from './gpt';
import { tokenLogProbsGradKernel, tokenLogProbsKernel, usingWasmKernels } from '../kernels/wasm-kernels';
import { oneHotF } from './ops';

export interface SeqLogProbs {
  /** [B] Σ_t w_t · log p(x_t | x_<t): the summed response log-likelihood. */
  sum: tf.Tensor1D;
  /** [B] number of response tokens. */
  count: tf.Tensor1D;
}

export function sequenceLogProbs(model: GPT, batch: TokenBatch): SeqLogProbs {
  const { B, T, input, target, weight } = batch;
  const V = model.config.vocabSize;
  const logits = model.forward(tf.tensor2d(input, [B, T], 'int32')); // [B·T, V]
  const targets = tf.tensor1d(target, 'int32');
  const picked = usingWasmKernels()
    ? targetLogProbs(logits, targets)
    : tf.sum(tf.mul(tf.logSoftmax(logits), oneHotF(targets, V)), 1); // [B·T]
  const w = tf.tensor2d(weight, [B, T]);
  return { sum: tf.sum(tf.mul(tf.reshape(picked, [B, T]), w), 1), count: tf.sum(w, 1) };
}

/** log p(target) per row of logits [N, V]: one fused kernel each way on wasm (targets are not differentiated). */
function targetLogProbs(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const f = tf.customGrad((x, save) => {
    (save as tf.GradSaveFunc)([x as tf.Tensor, targets]); // targets too: the forward scope disposes its tensors
    return {
      value: tokenLogProbsKernel(x as tf.Tensor2D, targets),
      gradFunc: (dy, saved) => {
        const [sx, st] = saved as [tf.Tensor2D, tf.Tensor1D];
        return tokenLogProbsGradKernel(sx, st, dy as tf.Tensor1D);
      },
    };
  });
  return f(logits) as tf.Tensor1D;
}

/** Token-level NLL averaged over every response token of the batch (VFT's loss). */
export function nllLoss(model: GPT, batch: TokenBatch): tf.Scalar {
  const { sum, count } = sequenceLogProbs(model, batch);
  return tf.neg(tf.div(tf.sum(sum), tf.maximum(tf.sum(count), 1))) as tf.Scalar;
}
