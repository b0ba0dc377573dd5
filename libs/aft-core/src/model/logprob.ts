/**
 * The one log-probability primitive every loss and score is built on: per-token log p(target | prefix) from the
 * model's logits, summed per sequence over the weighted (response) positions.
 */
import * as tf from '@tensorflow/tfjs';
import type { TokenBatch } from '../data/batch';
import type { GPT } from './gpt';
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
  const logp = tf.logSoftmax(logits); // [B·T, V]
  const picked = tf.sum(tf.mul(logp, oneHotF(tf.tensor1d(target, 'int32'), V)), 1); // [B·T]
  const w = tf.tensor2d(weight, [B, T]);
  return { sum: tf.sum(tf.mul(tf.reshape(picked, [B, T]), w), 1), count: tf.sum(w, 1) };
}

/** Token-level NLL averaged over every response token of the batch (VFT's loss). */
export function nllLoss(model: GPT, batch: TokenBatch): tf.Scalar {
  const { sum, count } = sequenceLogProbs(model, batch);
  return tf.neg(tf.div(tf.sum(sum), tf.maximum(tf.sum(count), 1))) as tf.Scalar;
}
