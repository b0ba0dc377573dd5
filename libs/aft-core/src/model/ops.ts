/**
 * Differentiable building blocks with hand-written gradients, for speed on the wasm backend.
 *
 * Why: tfjs-backend-wasm sends a matMul with a batch dimension or a transpose flag to a scalar loop (~2 GFLOP/s;
 * tfjs's own matMul gradient uses both). On wasm every product here runs on our SIMD kernel
 * (kernels/bmm.wat.ts), which reads either operand transposed for free, so forward and backward are plain calls
 * with flags — no Transpose kernels. Elsewhere they are tf.matMul with the same flags. Gather's gradient has no
 * wasm kernel, so embeddings are a one-hot matMul through `linear`.
 */
import * as tf from '@tensorflow/tfjs';
import {
  attentionGradKernel,
  attentionKernel,
  batchMatMul,
  causalSoftmaxGradKernel,
  causalSoftmaxKernel,
  colSumKernel,
  geluGradKernel,
  geluKernel,
  layerNormGradKernel,
  layerNormKernel,
  usingWasmKernels,
} from '../kernels/wasm-kernels';

/** op(a) · op(b) for rank-2 or rank-3 operands (no gradient). */
export function matMulT<T extends tf.Tensor2D | tf.Tensor3D>(a: T, b: T, transposeA: boolean, transposeB: boolean): T {
  if (!usingWasmKernels()) {
    if (tf.getBackend() !== 'wasm') return tf.matMul(a, b, transposeA, transposeB) as T;
    // tfjs-wasm alone: an explicit Transpose and a plain matMul beat its transposing matMul several times over
    const t = (x: T): T => tf.transpose(x, x.rank === 3 ? [0, 2, 1] : [1, 0]) as T;
    return tf.matMul(transposeA ? t(a) : a, transposeB ? t(b) : b) as T;
  }
  if (a.rank === 3) return batchMatMul(a as tf.Tensor3D, b as tf.Tensor3D, transposeA, transposeB) as T;
  const [a2, b2] = [a as tf.Tensor2D, b as tf.Tensor2D];
  const c = batchMatMul(tf.reshape(a2, [1, ...a2.shape]), tf.reshape(b2, [1, ...b2.shape]), transposeA, transposeB);
  return tf.reshape(c, [c.shape[1], c.shape[2]]) as T;
}

/**
 * The differentiable product C = op(A) · op(B) for fixed transpose flags. Its gradients are products of the same
 * kind: for C = A·B, dA = dC·Bᵀ and dB = Aᵀ·dC; the transposed cases swap roles (written out below).
 */
function product(ta: boolean, tb: boolean) {
  return tf.customGrad((a, b, save) => {
    const [x, y] = [a as tf.Tensor2D, b as tf.Tensor2D];
    (save as tf.GradSaveFunc)([x, y]);
    return {
      value: matMulT(x, y, ta, tb),
      gradFunc: (dy, saved) => {
        const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
        const g = dy as tf.Tensor2D;
        if (!ta && !tb) return [matMulT(g, sb, false, true), matMulT(sa, g, true, false)];
        if (!ta && tb) return [matMulT(g, sb, false, false), matMulT(g, sa, true, false)];
        if (ta && !tb) return [matMulT(sb, g, false, true), matMulT(sa, g, false, false)];
        return [matMulT(sb, g, true, true), matMulT(g, sa, true, true)];
      },
    };
  });
}

type Product<T> = (a: T, b: T) => T;

/** y = x · w for x [N, K], w [K, M]. */
export const linear = product(false, false) as Product<tf.Tensor2D>;

/** y = x · wᵀ for x [N, K], w [M, K] (the tied output projection: logits = h · embeddingᵀ). */
export const linearT = product(false, true) as Product<tf.Tensor2D>;

/** Batched y = a · b for a [N, M, K], b [N, K, P]. */
export const bmm = product(false, false) as Product<tf.Tensor3D>;

/** Batched y = a · bᵀ for a [N, M, K], b [N, P, K] (attention scores q · kᵀ without materialising kᵀ). */
export const bmmT = product(false, true) as Product<tf.Tensor3D>;

/** y = x · w + b for x [N, K], w [K, M], b [M]: on wasm one kernel (the bias starts the accumulators). */
export function affine(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  return usingWasmKernels() && b.size % 4 === 0 ? fusedAffine(x, w, b) : tf.add(linear(x, w), b);
}

const fusedAffine = tf.customGrad((x, w, b, save) => {
  const [a, m] = [x as tf.Tensor2D, w as tf.Tensor2D];
  (save as tf.GradSaveFunc)([a, m]);
  const y = batchMatMul(tf.reshape(a, [1, ...a.shape]), tf.reshape(m, [1, ...m.shape]), false, false, b as tf.Tensor1D);
  return {
    value: tf.reshape(y, [y.shape[1], y.shape[2]]),
    gradFunc: (dy, saved) => {
      const [sa, sm] = saved as [tf.Tensor2D, tf.Tensor2D];
      const g = dy as tf.Tensor2D;
      return [matMulT(g, sm, false, true), matMulT(sa, g, true, false), colSumKernel(g)];
    },
  };
}) as (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;

/**
 * Causal self-attention: softmax(scale · q·kᵀ + causal mask) · v for q, k, v [B·H, T, hd] → [B·H, T, hd]. On wasm:
 * two products and one fused softmax kernel forward; four products and one kernel backward (P is kept, not
 * recomputed). Elsewhere the composite with an additive −1e9 mask.
 */
export function causalAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, scale: number): tf.Tensor3D {
  if (!usingWasmKernels()) {
    const att = tf.add(tf.mul(bmmT(q, k), scale), causalMask(q.shape[1]));
    return bmm(tf.softmax(att) as tf.Tensor3D, v);
  }
  const f = tf.customGrad((qq, kk, vv, save) => {
    const [q3, k3, v3] = [qq as tf.Tensor3D, kk as tf.Tensor3D, vv as tf.Tensor3D];
    const p = causalSoftmaxKernel(batchMatMul(q3, k3, false, true), scale); // [B·H, T, T]
    (save as tf.GradSaveFunc)([q3, k3, v3, p]);
    return {
      value: batchMatMul(p, v3),
      gradFunc: (dy, saved) => {
        const [sq, sk, sv, sp] = saved as tf.Tensor3D[];
        const g = dy as tf.Tensor3D;
        const ds = causalSoftmaxGradKernel(sp!, batchMatMul(g, sv!, false, true), scale);
        return [batchMatMul(ds, sk!), batchMatMul(ds, sq!, true, false), batchMatMul(sp!, g, true, false)];
      },
    };
  });
  return f(q, k, v) as tf.Tensor3D;
}

/**
 * Causal multi-head self-attention straight from the fused projection qkv [B·T, 3D] → [B·T, D] with heads merged
 * (wasm kernels only: callers check usingWasmKernels()). The kernels read q, k, v and write y and dqkv per head
 * through strides, so there is no split, transpose or concat either way; P is kept for the backward.
 */
export function selfAttention(qkv: tf.Tensor2D, batch: number, heads: number, scale: number): tf.Tensor2D {
  const attrs = { batch, heads, scale };
  const f = tf.customGrad((x, save) => {
    const [y, p] = attentionKernel(x as tf.Tensor2D, attrs);
    (save as tf.GradSaveFunc)([x as tf.Tensor2D, p]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [sx, sp] = saved as [tf.Tensor2D, tf.Tensor3D];
        return attentionGradKernel(sx, sp, dy as tf.Tensor2D, attrs);
      },
    };
  });
  return f(qkv) as tf.Tensor2D;
}

const masks = new Map<number, Float32Array>();

/** Additive causal mask [T, T]: 0 on and below the diagonal, -1e9 above (values cached per T, not tensors). */
function causalMask(T: number): tf.Tensor2D {
  let m = masks.get(T);
  if (!m) {
    m = new Float32Array(T * T);
    for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = -1e9;
    masks.set(T, m);
  }
  return tf.tensor2d(m, [T, T]);
}

/** LayerNorm over the last axis with gain and bias: on wasm one kernel each way, elsewhere the composite. */
export function layerNorm(x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D, eps = 1e-5): tf.Tensor2D {
  if (!usingWasmKernels() || g.size % 4 !== 0) return layerNormComposite(x, g, b, eps);
  const f = tf.customGrad((xx, gg, bb, save) => {
    (save as tf.GradSaveFunc)([xx as tf.Tensor, gg as tf.Tensor]);
    return {
      value: layerNormKernel(xx as tf.Tensor, gg as tf.Tensor, bb as tf.Tensor, eps),
      gradFunc: (dy, saved) => {
        const [sx, sg] = saved as tf.Tensor[];
        return layerNormGradKernel(sx!, sg!, dy as tf.Tensor, eps);
      },
    };
  });
  return f(x, g, b) as tf.Tensor2D;
}

export function layerNormComposite(x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D, eps = 1e-5): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), g), b);
}

/** GELU, tanh approximation (GPT-2): on wasm one fused kernel each way, elsewhere the composite below. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return usingWasmKernels() ? fusedGelu(x) : geluComposite(x);
}

const fusedGelu = tf.customGrad((x, save) => {
  (save as tf.GradSaveFunc)([x as tf.Tensor]);
  return {
    value: geluKernel(x as tf.Tensor),
    gradFunc: (dy, saved) => geluGradKernel((saved as tf.Tensor[])[0]!, dy as tf.Tensor),
  };
}) as (x: tf.Tensor) => tf.Tensor;

/** x³ as x·x·x: wasm's Pow (and its gradient) is ~10× slower than Multiply. */
export function geluComposite(x: tf.Tensor): tf.Tensor {
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
