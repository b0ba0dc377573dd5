/**
 * Our own kernels for tfjs-backend-wasm, registered under names of their own. They run in the backend's linear
 * memory (the WebAssembly modules import it): inputs and outputs are the backend's tensors, no copies. Assembled
 * from WAT text at start (wabt); `AFT_WASM_KERNELS=off` leaves them out.
 *
 * - `AftBatchMatMul` (bmm.wat.ts): batched matMul with transpose flags and an optional bias at SIMD speed, where
 *   tfjs-wasm falls back to a scalar loop; on other backends `batchMatMul` below is tf.matMul.
 * - `AftAttention`/`AftAttentionGrad`: causal multi-head self-attention from the fused qkv projection, heads read
 *   and written in place through strided products, with the fused causal softmax and its gradient.
 * - fused.wat.ts: GELU, LayerNorm, bias column sums, AdamW, token log-probabilities, each with its gradient where
 *   it has one. ops.ts and logprob.ts wrap them in tf.customGrad and keep tfjs composites for other backends.
 *
 * Two of tfjs-wasm's kernels are replaced: `Identity` and same-dtype `Cast` copy their input there, and tfjs's
 * autodiff calls Identity to save every recorded op's inputs for the backward pass (~450 copies per training step
 * of the tiny GPT, 9% of its time) and Cast on the way back. Tensors are immutable (a Variable's assign swaps its
 * data for a new buffer), so both now share the input's buffer by reference count, as tfjs's cpu backend does.
 */
import * as tf from '@tensorflow/tfjs';
import { BMM_WAT } from './bmm.wat';
import { FUSED_WAT } from './fused.wat';

export const AFT_BATCH_MATMUL = 'AftBatchMatMul';
export const AFT_GELU = 'AftGelu';
export const AFT_GELU_GRAD = 'AftGeluGrad';
export const AFT_LAYER_NORM = 'AftLayerNorm';
export const AFT_LAYER_NORM_GRAD = 'AftLayerNormGrad';
export const AFT_COL_SUM = 'AftColSum';
export const AFT_ADAMW = 'AftAdamW';
export const AFT_TOKEN_LOGPROBS = 'AftTokenLogProbs';
export const AFT_TOKEN_LOGPROBS_GRAD = 'AftTokenLogProbsGrad';
export const AFT_ATTENTION = 'AftAttention';
export const AFT_ATTENTION_GRAD = 'AftAttentionGrad';
export const AFT_CAUSAL_SOFTMAX = 'AftCausalSoftmax';
export const AFT_CAUSAL_SOFTMAX_GRAD = 'AftCausalSoftmaxGrad';

interface WasmBackendInternals {
  incRef(dataId: object): void;
  wasm: { asm: { memory: WebAssembly.Memory }; _malloc(n: number): number; _free(p: number): void };
  dataIdMap: { get(id: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
}

/** A strided matrix operand: byte address, row stride, and element strides between batches and heads. */
interface Operand {
  at: number;
  ld: number;
  sn: number;
  sh?: number;
}

interface StridedProduct {
  batch: number;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  /** Heads: batch b is (b / H, b mod H) for the strides. */
  H?: number;
  a: Operand;
  b: Operand;
  c: Operand;
  bias?: number;
  /** Work a causal mask makes zero, skipped (bmm.wat.ts): 1 lower-triangular A, 2 upper op(A), 3 lower C only. */
  causal?: 0 | 1 | 2 | 3;
}

interface KernelExports {
  bmm(...args: number[]): void;
  gelu(x: number, y: number, n: number): void;
  geluGrad(x: number, dy: number, dx: number, n: number): void;
  layerNorm(x: number, g: number, b: number, y: number, rows: number, d: number, eps: number): void;
  layerNormGrad(
    x: number,
    g: number,
    dy: number,
    dx: number,
    dg: number,
    db: number,
    rows: number,
    d: number,
    eps: number,
  ): void;
  colSum(x: number, out: number, rows: number, m: number): void;
  causalSoftmax(s: number, p: number, rows: number, t: number, scale: number): void;
  causalSoftmaxGrad(p: number, dp: number, ds: number, rows: number, t: number, scale: number): void;
  adamw(...args: number[]): void;
  tokenLogProbs(x: number, t: number, out: number, rows: number, v: number): void;
  tokenLogProbsGrad(x: number, t: number, dy: number, dx: number, rows: number, v: number): void;
}

async function assemble(name: string, wat: string, memory: WebAssembly.Memory): Promise<WebAssembly.Instance> {
  const wabt = await (await import('wabt')).default();
  const mod = wabt.parseWat(name, wat, { simd: true, multi_value: true });
  let bytes: Uint8Array;
  try {
    mod.validate();
    bytes = mod.toBinary({}).buffer;
  } finally {
    mod.destroy();
  }
  return (await WebAssembly.instantiate(new Uint8Array(bytes), { env: { memory } })).instance;
}

let installed = false;
let enabled = true;

/** Assembles the kernels and registers them with the wasm backend (once per process). Needs the backend ready. */
export async function installWasmKernels(): Promise<void> {
  if (installed) return;
  const backend = tf.findBackend('wasm') as unknown as WasmBackendInternals | undefined;
  if (!backend?.wasm?.asm?.memory) throw new Error('the wasm backend is not initialised');
  const memory = backend.wasm.asm.memory;
  const exports = {
    ...(await assemble('bmm.wat', BMM_WAT, memory)).exports,
    ...(await assemble('fused.wat', FUSED_WAT, memory)).exports,
  } as unknown as KernelExports;

  // scratch, grown on demand (freed and re-allocated: contents never outlive a kernel call)
  const scratch = (): ((bytes: number) => number) => {
    let at = 0;
    let size = 0;
    return (bytes) => {
      if (bytes > size) {
        if (at) backend.wasm._free(at);
        size = Math.max(bytes, size * 2, 1 << 16);
        at = backend.wasm._malloc(size);
        if (!at) throw new Error(`out of wasm memory allocating ${size} bytes of kernel scratch`);
      }
      return at;
    };
  };
  const packScratch = scratch(); // packed operands of one product
  const attentionScratch = scratch(); // dP/dS of the attention backward

  /** One strided batched product (see bmm.wat.ts): pointers are byte offsets, strides in elements. */
  const mm = (o: StridedProduct): void => {
    const nPad = Math.ceil(o.N / 8) * 8;
    const apBytes = 4 * o.K * (o.transA ? Math.ceil(o.M / 4) * 4 : 4);
    const bpBytes = 4 * o.K * nPad;
    const base = packScratch(apBytes + bpBytes + 4 * nPad);
    const [A, B, C] = [o.a, o.b, o.c];
    exports.bmm(
      A.at,
      B.at,
      C.at,
      o.batch,
      o.M,
      o.N,
      o.K,
      o.transA ? 1 : 0,
      o.transB ? 1 : 0,
      o.H ?? 1,
      A.ld,
      A.sn,
      A.sh ?? 0,
      B.ld,
      B.sn,
      B.sh ?? 0,
      C.ld,
      C.sn,
      C.sh ?? 0,
      o.causal ?? 0,
      base,
      base + apBytes,
      o.bias ?? 0,
      base + apBytes + bpBytes,
    );
  };

  type Inputs = Record<string, tf.TensorInfo>;
  type Attrs = Record<string, unknown>;
  /** Registers a kernel for the wasm backend; kernels use `backend`, `at` and `output` from this closure. */
  const register = (
    kernelName: string,
    kernelFunc: (inputs: Inputs, attrs: Attrs) => tf.TensorInfo | tf.TensorInfo[],
  ) =>
    tf.registerKernel({
      kernelName,
      backendName: 'wasm',
      kernelFunc: ({ inputs, attrs }) => kernelFunc(inputs as Inputs, attrs as Attrs),
    });
  /** Byte address of a tensor's data in the wasm memory. */
  const at = (t: tf.TensorInfo): number => backend.dataIdMap.get(t.dataId)!.memoryOffset;
  const output = (shape: number[]): tf.TensorInfo => backend.makeOutput(shape, 'float32');
  /** [rows, length of the last axis]. */
  const rowsOf = (x: tf.TensorInfo): [number, number] => {
    const d = x.shape[x.shape.length - 1]!;
    return [tf.util.sizeFromShape(x.shape) / d, d];
  };

  register(AFT_BATCH_MATMUL, ({ a, b, bias }, attrs) => {
    const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
    if (a!.dtype !== 'float32' || b!.dtype !== 'float32') throw new Error(`${AFT_BATCH_MATMUL} takes float32 tensors`);
    if (a!.shape.length !== 3 || b!.shape.length !== 3) throw new Error(`${AFT_BATCH_MATMUL} takes rank-3 tensors`);
    const [ba, a1, a2] = a!.shape as [number, number, number];
    const [bb, b1, b2] = b!.shape as [number, number, number];
    const [M, K] = transposeA ? [a2, a1] : [a1, a2];
    const [Kb, N] = transposeB ? [b2, b1] : [b1, b2];
    if (K !== Kb || (ba !== bb && ba !== 1 && bb !== 1)) {
      throw new Error(
        `${AFT_BATCH_MATMUL}: shapes [${a!.shape}] and [${b!.shape}] do not multiply (transposeA=${transposeA}, transposeB=${transposeB})`,
      );
    }
    if (bias && (bias.shape.length !== 1 || bias.shape[0] !== N || bias.dtype !== 'float32')) {
      throw new Error(`${AFT_BATCH_MATMUL}: bias of shape [${bias.shape}] for ${N} columns`);
    }
    const batch = Math.max(ba, bb);
    const out = output([batch, M, N]);
    if (batch * M * N === 0) return out;
    if (K === 0) throw new Error(`${AFT_BATCH_MATMUL}: the inner dimension is empty`);
    mm({
      batch,
      M,
      N,
      K,
      transA: transposeA,
      transB: transposeB,
      a: { at: at(a!), ld: transposeA ? M : K, sn: ba === 1 ? 0 : M * K },
      b: { at: at(b!), ld: transposeB ? K : N, sn: bb === 1 ? 0 : K * N },
      c: { at: at(out), ld: N, sn: M * N },
      bias: bias ? at(bias) : 0,
    });
    return out;
  });
  register(AFT_GELU, ({ x }) => {
    const out = output(x!.shape);
    exports.gelu(at(x!), at(out), tf.util.sizeFromShape(x!.shape));
    return out;
  });
  register(AFT_GELU_GRAD, ({ x, dy }) => {
    const out = output(x!.shape);
    exports.geluGrad(at(x!), at(dy!), at(out), tf.util.sizeFromShape(x!.shape));
    return out;
  });
  register(AFT_LAYER_NORM, ({ x, g, b }, { eps }) => {
    const [rows, d] = rowsOf(x!);
    const out = output(x!.shape);
    exports.layerNorm(at(x!), at(g!), at(b!), at(out), rows, d, eps as number);
    return out;
  });
  register(AFT_LAYER_NORM_GRAD, ({ x, g, dy }, { eps }) => {
    const [rows, d] = rowsOf(x!);
    const [dx, dg, db] = [output(x!.shape), output([d]), output([d])];
    exports.layerNormGrad(at(x!), at(g!), at(dy!), at(dx), at(dg), at(db), rows, d, eps as number);
    return [dx, dg, db];
  });
  register(AFT_COL_SUM, ({ x }) => {
    const [rows, m] = rowsOf(x!);
    const out = output([m]);
    exports.colSum(at(x!), at(out), rows, m);
    return out;
  });
  register(AFT_CAUSAL_SOFTMAX, ({ s: x }, { scale }) => {
    const [rows, t] = rowsOf(x!);
    const out = output(x!.shape);
    exports.causalSoftmax(at(x!), at(out), rows, t, scale as number);
    return out;
  });
  register(AFT_CAUSAL_SOFTMAX_GRAD, ({ p, dp }, { scale }) => {
    const [rows, t] = rowsOf(p!);
    const out = output(p!.shape);
    exports.causalSoftmaxGrad(at(p!), at(dp!), at(out), rows, t, scale as number);
    return out;
  });

  // Causal self-attention straight from the fused projection qkv [B·T, 3D] (q | k | v, heads of width hd side by
  // side): every product reads and writes heads in place through strides, so no split, transpose or concat.
  const attention = (qkv: tf.TensorInfo, attrs: Attrs) => {
    const { batch: B, heads: H, scale } = attrs as unknown as AttentionAttrs;
    const [rows, D3] = qkv.shape as [number, number];
    const T = rows / B;
    const D = D3 / 3;
    const hd = D / H;
    if (qkv.shape.length !== 2 || !Number.isInteger(T) || !Number.isInteger(hd) || D3 % 3 !== 0) {
      throw new Error(`${AFT_ATTENTION}: qkv of shape [${qkv.shape}] for batch ${B} and ${H} heads`);
    }
    const x = at(qkv);
    // a head of batch n, head h: rows ld apart, n·T·ld + h·hd from `addr` (q, k, v of qkv: + 0, D, 2D floats)
    const head = (addr: number, ld: number): Operand => ({ at: addr, ld, sn: T * ld, sh: hd });
    const [q, k, v] = [0, 1, 2].map((i) => head(x + 4 * i * D, 3 * D)) as [Operand, Operand, Operand];
    const scores = (addr: number): Operand => ({ at: addr, ld: T, sn: H * T * T, sh: T * T });
    /** One product per batch-head; `causal` as in bmm.wat.ts. */
    const product = (
      causal: StridedProduct['causal'],
      transA: boolean,
      transB: boolean,
      K: number,
      a: Operand,
      b: Operand,
      c: Operand,
    ) => mm({ batch: B * H, H, M: T, N: transB ? T : hd, K, transA, transB, causal, a, b, c });
    return { B, H, T, D, hd, scale, q, k, v, head, scores, product };
  };
  register(AFT_ATTENTION, ({ qkv }, attrs) => {
    const { B, H, T, D, hd, scale, q, k, v, head, scores, product } = attention(qkv!, attrs);
    const [y, p] = [output([B * T, D]), output([B * H, T, T])];
    const P = at(p);
    // S = Q·Kᵀ (lower triangle), written where P goes; P = softmax(scale·S + mask) in place; Y = P·V, heads into
    // y's columns. Blocks the causal mask makes zero are skipped throughout.
    product(3, false, true, hd, q, k, scores(P));
    exports.causalSoftmax(P, P, B * H * T, T, scale);
    product(1, false, false, T, scores(P), v, head(at(y), D));
    return [y, p];
  });
  register(AFT_ATTENTION_GRAD, ({ qkv, p, dy }, attrs) => {
    const { B, H, T, D, hd, scale, q, k, v, head, scores, product } = attention(qkv!, attrs);
    const dqkv = output(qkv!.shape);
    const [P, dY] = [scores(at(p!)), head(at(dy!), D)];
    const [dQ, dK, dV] = [0, 1, 2].map((i) => head(at(dqkv) + 4 * i * D, 3 * D)) as [Operand, Operand, Operand];
    const dS = scores(attentionScratch(4 * B * H * T * T));
    // dP = dY·Vᵀ; dS = scale·P⊙(dP − Σ dP·P) in place; dV = Pᵀ·dY; dQ = dS·K; dK = dSᵀ·Q
    product(3, false, true, hd, dY, v, dS);
    exports.causalSoftmaxGrad(P.at, dS.at, dS.at, B * H * T, T, scale);
    product(2, true, false, T, P, dY, dV);
    product(1, false, false, T, dS, k, dQ);
    product(2, true, false, T, dS, q, dK);
    return dqkv;
  });

  register(AFT_ADAMW, ({ p, g, m, v }, attrs) => {
    const a = attrs as unknown as AdamWAttrs;
    const n = tf.util.sizeFromShape(p!.shape);
    for (const t of [g!, m!, v!]) {
      if (tf.util.sizeFromShape(t.shape) !== n) throw new Error(`${AFT_ADAMW}: tensors of different sizes`);
    }
    const outs = [p!, m!, v!].map((t) => output(t.shape)) as [tf.TensorInfo, tf.TensorInfo, tf.TensorInfo];
    exports.adamw(
      at(p!),
      at(g!),
      at(m!),
      at(v!),
      ...outs.map(at),
      n,
      a.gradScale,
      a.beta1,
      a.beta2,
      a.bc1,
      a.bc2,
      a.eps,
      a.lr,
      a.decay,
    );
    return outs;
  });
  /** Address of int32 targets [rows], each checked to lie in 0..v−1 before a kernel indexes with it. */
  const targetsAt = (t: tf.TensorInfo, rows: number, v: number): number => {
    if (t.dtype !== 'int32' || tf.util.sizeFromShape(t.shape) !== rows) {
      throw new Error(`${AFT_TOKEN_LOGPROBS}: targets must be ${rows} int32 values`);
    }
    for (const id of new Int32Array(memory.buffer, at(t), rows)) {
      if (!(id >= 0 && id < v)) throw new Error(`${AFT_TOKEN_LOGPROBS}: target ${id} outside 0..${v - 1}`);
    }
    return at(t);
  };
  register(AFT_TOKEN_LOGPROBS, ({ logits, targets }) => {
    const [rows, v] = rowsOf(logits!);
    const t = targetsAt(targets!, rows, v);
    const out = output([rows]);
    exports.tokenLogProbs(at(logits!), t, at(out), rows, v);
    return out;
  });
  register(AFT_TOKEN_LOGPROBS_GRAD, ({ logits, targets, dy }) => {
    const [rows, v] = rowsOf(logits!);
    const t = targetsAt(targets!, rows, v);
    const out = output(logits!.shape);
    exports.tokenLogProbsGrad(at(logits!), t, at(dy!), at(out), rows, v);
    return out;
  });
  shareBuffers();
  installed = true;
}

/** Identity, and Cast to the same dtype, as a new reference to the input's buffer (see the header). */
function shareBuffers(): void {
  const share = (x: tf.TensorInfo, be: unknown): tf.TensorInfo => {
    (be as WasmBackendInternals).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  for (const name of ['Identity', 'Cast'] as const) {
    const original = tf.getKernel(name, 'wasm');
    if (!original) throw new Error(`tfjs-backend-wasm has no ${name} kernel`);
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({
      ...original,
      kernelFunc: (args) => {
        const x = (args.inputs as { x: tf.TensorInfo }).x;
        const to = name === 'Cast' ? (args.attrs as unknown as { dtype: tf.DataType }).dtype : x.dtype;
        return enabled && to === x.dtype && x.dtype !== 'string' ? share(x, args.backend) : original.kernelFunc(args);
      },
    });
  }
}

/** Whether batchMatMul runs on our kernel in this process (the wasm backend is active and the kernels installed). */
export function usingWasmKernels(): boolean {
  return installed && enabled && tf.getBackend() === 'wasm';
}

/** Switches our kernels off and on again (benchmarks compare both in one process); returns the previous setting. */
export function setWasmKernelsEnabled(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

/** GELU (tanh form) of x and, given dy, its gradient — our fused kernels (callers check usingWasmKernels()). */
export function geluKernel(x: tf.Tensor): tf.Tensor {
  return tf.engine().runKernel(AFT_GELU, { x }, {}) as tf.Tensor;
}
export function geluGradKernel(x: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  return tf.engine().runKernel(AFT_GELU_GRAD, { x, dy }, {}) as tf.Tensor;
}

/** LayerNorm over the last axis (its length a multiple of 4), and its three gradients. */
export function layerNormKernel(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  return tf.engine().runKernel(AFT_LAYER_NORM, { x, g, b }, { eps }) as tf.Tensor;
}
export function layerNormGradKernel(x: tf.Tensor, g: tf.Tensor, dy: tf.Tensor, eps: number): tf.Tensor[] {
  return tf.engine().runKernel(AFT_LAYER_NORM_GRAD, { x, g, dy }, { eps }) as unknown as tf.Tensor[];
}

export interface AttentionAttrs {
  batch: number;
  heads: number;
  scale: number;
}

/**
 * Causal self-attention from the fused projection qkv [B·T, 3D] → [y [B·T, D] (heads merged), P [B·H, T, T]]; and
 * the gradient with respect to qkv given P and dy.
 */
export function attentionKernel(qkv: tf.Tensor2D, attrs: AttentionAttrs): [tf.Tensor2D, tf.Tensor3D] {
  return tf.engine().runKernel(AFT_ATTENTION, { qkv }, attrs as unknown as tf.NamedAttrMap) as unknown as [
    tf.Tensor2D,
    tf.Tensor3D,
  ];
}
export function attentionGradKernel(
  qkv: tf.Tensor2D,
  p: tf.Tensor3D,
  dy: tf.Tensor2D,
  attrs: AttentionAttrs,
): tf.Tensor2D {
  return tf.engine().runKernel(AFT_ATTENTION_GRAD, { qkv, p, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

export interface AdamWAttrs {
  /** Multiplies the gradient first (global-norm clipping). */
  gradScale: number;
  beta1: number;
  beta2: number;
  /** Bias corrections 1 − β₁ᵗ and 1 − β₂ᵗ. */
  bc1: number;
  bc2: number;
  eps: number;
  lr: number;
  /** Decoupled weight decay as a factor on the parameter: 1 − lr·λ, or 1. */
  decay: number;
}

/** One AdamW step of a tensor: returns the new parameter and moments [p, m, v]. */
export function adamwKernel(p: tf.Tensor, g: tf.Tensor, m: tf.Tensor, v: tf.Tensor, attrs: AdamWAttrs): tf.Tensor[] {
  return tf
    .engine()
    .runKernel(AFT_ADAMW, { p, g, m, v }, attrs as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
}

/** log softmax(logits)[target] for each row of logits [N, V] and int32 targets [N] → [N]. */
export function tokenLogProbsKernel(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  return tf.engine().runKernel(AFT_TOKEN_LOGPROBS, { logits, targets }, {}) as tf.Tensor1D;
}
/** Its gradient with respect to the logits for upstream dy [N]: dy · (onehot(target) − softmax(logits)). */
export function tokenLogProbsGradKernel(logits: tf.Tensor2D, targets: tf.Tensor1D, dy: tf.Tensor1D): tf.Tensor2D {
  return tf.engine().runKernel(AFT_TOKEN_LOGPROBS_GRAD, { logits, targets, dy }, {}) as tf.Tensor2D;
}

/** softmax(scale·s + causal mask) over the last axis of s [N, T, T] (row r of each matrix attends to keys ≤ r). */
export function causalSoftmaxKernel(s: tf.Tensor3D, scale: number): tf.Tensor3D {
  return tf.engine().runKernel(AFT_CAUSAL_SOFTMAX, { s }, { scale }) as tf.Tensor3D;
}
/** Its gradient with respect to s: scale · p ⊙ (dp − Σ dp·p). */
export function causalSoftmaxGradKernel(p: tf.Tensor3D, dp: tf.Tensor3D, scale: number): tf.Tensor3D {
  return tf.engine().runKernel(AFT_CAUSAL_SOFTMAX_GRAD, { p, dp }, { scale }) as tf.Tensor3D;
}

/** Column sums of a matrix whose row length is a multiple of 4 (a bias's gradient). */
export function colSumKernel(x: tf.Tensor2D): tf.Tensor1D {
  return tf.engine().runKernel(AFT_COL_SUM, { x }, {}) as tf.Tensor1D;
}

/** C = op(A) · op(B) (+ bias over C's columns) for rank-3 tensors (no gradient: see ops.ts for the differentiable forms). */
export function batchMatMul(
  a: tf.Tensor3D,
  b: tf.Tensor3D,
  transposeA = false,
  transposeB = false,
  bias?: tf.Tensor1D,
): tf.Tensor3D {
  if (!usingWasmKernels()) {
    const c = tf.matMul(a, b, transposeA, transposeB) as tf.Tensor3D;
    return bias ? (tf.add(c, bias) as tf.Tensor3D) : c;
  }
  const inputs: tf.NamedTensorMap = bias ? { a, b, bias } : { a, b };
  return tf.engine().runKernel(AFT_BATCH_MATMUL, inputs, { transposeA, transposeB }) as tf.Tensor3D;
}
