/**
 * Differentiable building blocks with hand-written gradients, for speed on the wasm backend.
 *
 * Why: tfjs's built-in matMul gradient calls matMul with transposeA/transposeB, which on wasm is 10–30× slower
 * than a plain matMul (STACK.md). Each op here computes its gradients with explicit transposes and plain
 * matMuls — identical maths, several times faster training. Gather's gradient has no wasm kernel, so
 * embeddings are a one-hot matMul through `linear`.
 */
import * as tf from '@tensorflow/tfjs';

/** y = x · w for x [N, K], w [K, M]. */
export const linear = tf.customGrad((x, w, save) => {
  const [a, b] = [x as tf.Tensor2D, w as tf.Tensor2D];
  (save as tf.GradSaveFunc)([a, b]);
  return {
    value: tf.matMul(a, b), // [N, M]
    gradFunc: (dy, saved) => {
      const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
      const g = dy as tf.Tensor2D;
      return [tf.matMul(g, tf.transpose(sb)), tf.matMul(tf.transpose(sa), g)]; // [N, K], [K, M]
    },
  };
}) as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;

/** y = x · wᵀ for x [N, K], w [M, K] (the tied output projection: logits = h · embeddingᵀ). */
export const linearT = tf.customGrad((x, w, save) => {
  const [a, b] = [x as tf.Tensor2D, w as tf.Tensor2D];
  (save as tf.GradSaveFunc)([a, b]);
  return {
    value: tf.matMul(a, tf.transpose(b)), // [N, M]
    gradFunc: (dy, saved) => {
      const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
      const g = dy as tf.Tensor2D;
      return [tf.matMul(g, sb), tf.matMul(tf.transpose(g), sa)]; // [N, K], [M, K]
    },
  };
}) as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;

/** Batched y = a · b for a [N, M, K], b [N, K, P]. */
export const bmm = tf.customGrad((a, b, save) => {
  const [x, y] = [a as tf.Tensor3D, b as tf.Tensor3D];
  (save as tf.GradSaveFunc)([x, y]);
  return {
    value: tf.matMul(x, y), // [N, M, P]
    gradFunc: (dy, saved) => {
      const [sx, sy] = saved as [tf.Tensor3D, tf.Tensor3D];
      const g = dy as tf.Tensor3D;
      return [tf.matMul(g, tf.transpose(sy, [0, 2, 1])), tf.matMul(tf.transpose(sx, [0, 2, 1]), g)];
    },
  };
}) as (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D;

/** LayerNorm over the last axis with gain and bias. */
export function layerNorm(x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D, eps = 1e-5): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), g), b);
}

/** GELU, tanh approximation (GPT-2). x³ as x·x·x: wasm's Pow (and its gradient) is ~10× slower than Multiply. */
export function gelu(x: tf.Tensor): tf.Tensor {
  const c = Math.sqrt(2 / Math.PI);
  const x3 = tf.mul(tf.mul(x, x), x);
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(c, tf.add(x, tf.mul(0.044715, x3))))));
}

/**
 * One-hot rows as float32. (tfjs-backend-wasm's OneHot kernel ignores a float32 dtype and writes int32 bits —
 * the result reads as zeros — so build it as int32 and cast.)
 */
export function oneHotF(indices: tf.Tensor1D, depth: number): tf.Tensor2D {
  return tf.cast(tf.oneHot(indices, depth), 'float32') as tf.Tensor2D;
}
