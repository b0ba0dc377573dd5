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
  adamw(
    p: number,
    g: number,
    m: number,
    v: number,
    po: number,
    mo: number,
    vo: number,
    n: number,
    ...hyper: number[]
  ): void;
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
  const offset = (be: unknown, t: tf.TensorInfo): number =>
    (be as WasmBackendInternals).dataIdMap.get(t.dataId)!.memoryOffset;

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

  tf.registerKernel({
    kernelName: AFT_BATCH_MATMUL,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend: be, attrs }) => {
      const wb = be as unknown as WasmBackendInternals;
      const { a, b, bias } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo; bias?: tf.TensorInfo };
      const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
      if (a.dtype !== 'float32' || b.dtype !== 'float32') throw new Error(`${AFT_BATCH_MATMUL} takes float32 tensors`);
      if (a.shape.length !== 3 || b.shape.length !== 3) throw new Error(`${AFT_BATCH_MATMUL} takes rank-3 tensors`);
      const [ba, a1, a2] = a.shape as [number, number, number];
      const [bb, b1, b2] = b.shape as [number, number, number];
      const [M, K] = transposeA ? [a2, a1] : [a1, a2];
      const [Kb, N] = transposeB ? [b2, b1] : [b1, b2];
      if (K !== Kb || (ba !== bb && ba !== 1 && bb !== 1)) {
        throw new Error(
          `${AFT_BATCH_MATMUL}: shapes [${a.shape}] and [${b.shape}] do not multiply (transposeA=${transposeA}, transposeB=${transposeB})`,
        );
      }
      if (bias && (bias.shape.length !== 1 || bias.shape[0] !== N || bias.dtype !== 'float32')) {
        throw new Error(`${AFT_BATCH_MATMUL}: bias of shape [${bias.shape}] for ${N} columns`);
      }
      const batch = Math.max(ba, bb);
      const out = wb.makeOutput([batch, M, N], 'float32');
      if (batch * M * N === 0) return out;
      if (K === 0) throw new Error(`${AFT_BATCH_MATMUL}: the inner dimension is empty`);
      mm({
        batch,
        M,
        N,
        K,
        transA: transposeA,
        transB: transposeB,
        a: { at: offset(wb, a), ld: transposeA ? M : K, sn: ba === 1 ? 0 : M * K },
        b: { at: offset(wb, b), ld: transposeB ? K : N, sn: bb === 1 ? 0 : K * N },
        c: { at: offset(wb, out), ld: N, sn: M * N },
        bias: bias ? offset(wb, bias) : 0,
      });
      return out;
    },
  });
  tf.registerKernel({
    kernelName: AFT_GELU,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend: be }) => {
      const { x } = inputs as { x: tf.TensorInfo };
      const out = (be as unknown as WasmBackendInternals).makeOutput(x.shape, 'float32');
      exports.gelu(offset(be, x), offset(be, out), tf.util.sizeFromShape(x.shape));
      return out;
    },
  });
  tf.registerKernel({
    kernelName: AFT_GELU_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend: be }) => {
      const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const out = (be as unknown as WasmBackendInternals).makeOutput(x.shape, 'float32');
      exports.geluGrad(offset(be, x), offset(be, dy), offset(be, out), tf.util.sizeFromShape(x.shape));
      return out;
    },
  });
  const rowsOf = (x: tf.TensorInfo): [number, number] => {
    const d = x.shape[x.shape.length - 1]!;
    return [tf.util.sizeFromShape(x.shape) / d, d];
  };
  tf.registerKernel({
    kernelName: AFT_LAYER_NORM,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend: be, attrs }) => {
      const { x, g, b } = inputs as { x: tf.TensorInfo; g: tf.TensorInfo; b: tf.TensorInfo };
      const [rows, d] = rowsOf(x);
      const out = (be as unknown as WasmBackendInternals).makeOutput(x.shape, 'float32');
      const eps = (attrs as unknown as { eps: number }).eps;
      exports.layerNorm(offset(be, x), offset(be, g), offset(be, b), offset(be, out), rows, d, eps);
      return out;
    },
  });
  tf.registerKernel({
    kernelName: AFT_LAYER_NORM_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend: be, attrs }) => {
      const { x, g, dy } = inputs as { x: tf.TensorInfo; g: tf.TensorInfo; dy: tf.TensorInfo };
      const [rows, d] = rowsOf(x);
      const wb = be as unknown as WasmBackendInternals;
      const [dx, dg, db] = [
        wb.makeOutput(x.shape, 'float32'),
        wb.makeOutput([d], 'float32'),
        wb.makeOutput([d], 'float32'),
      ];
      const eps = (attrs as unknown as { eps: number }).eps;
      exports.layerNormGrad(
        offset(be, x),
        offset(be, g),
        offset(be, dy),
        offset(be, dx!),
        offset(be, dg!),
        offset(be, db!),
        rows,
        d,
        eps,
      );
      return [dx!, dg!, db!];
    },
  });
  tf.registerKernel({
    kernelName: AFT_COL_SUM,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend: be }) => {
      const { x } = inputs as { x: tf.TensorInfo };
      const [rows, m] = rowsOf(x);
      const out = (be as unknown as WasmBackendInternals).makeOutput([m], 'float32');
      exports.colSum(offset(be, x), offset(be, out), rows, m);
      return out;
    },
  });
  tf.registerKernel({
    kernelName: AFT_CAUSAL_SOFTMAX,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend: be, attrs }) => {
      const { s: x } = inputs as { s: tf.TensorInfo };
      const [rows, t] = rowsOf(x);
      const out = (be as unknown as WasmBackendInternals).makeOutput(x.shape, 'float32');
      exports.causalSoftmax(offset(be, x), offset(be, out), rows, t, (attrs as unknown as { scale: number }).scale);
      return out;
    },
  });
  tf.registerKernel({
    kernelName: AFT_CAUSAL_SOFTMAX_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend: be, attrs }) => {
      const { p: pr, dp } = inputs as { p: tf.TensorInfo; dp: tf.TensorInfo };
      const [rows, t] = rowsOf(pr);
      const out = (be as unknown as WasmBackendInternals).makeOutput(pr.shape, 'float32');
      const scale = (attrs as unknown as { scale: number }).scale;
      exports.causalSoftmaxGrad(offset(be, pr), offset(be, dp), offset(be, out), rows, t, scale);
      return out;
    },
  });
  // Causal self-attention straight from the fused projection qkv [B·T, 3D] (q | k | v, heads of width hd side by
  // side): every product reads and writes heads in place through strides, so no split, transpose or concat.
  const attentionLayout = (x: tf.TensorInfo, attrs: unknown) => {
    const { batch: B, heads: H, scale } = attrs as AttentionAttrs;
    const [rows, D3] = x.shape as [number, number];
    const T = rows / B;
    const D = D3 / 3;
    const hd = D / H;
    if (x.shape.length !== 2 || !Number.isInteger(T) || !Number.isInteger(hd) || D3 % 3 !== 0) {
      throw new Error(`${AFT_ATTENTION}: qkv of shape [${x.shape}] for batch ${B} and ${H} heads`);
    }
    // q, k, v of batch-head (n, h): rows 3D apart, n·T·3D + h·hd (+ D for k, + 2D for v) from qkv's start
    const head = (at: number, ld: number): Operand => ({ at, ld, sn: T * ld, sh: hd });
    const scores = (at: number): Operand => ({ at, ld: T, sn: H * T * T, sh: T * T });
    return { B, H, T, D, hd, scale, head, scores };
  };
  tf.registerKernel({
    kernelName: AFT_ATTENTION,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend: be, attrs }) => {
      const wb = be as unknown as WasmBackendInternals;
      const { qkv } = inputs as { qkv: tf.TensorInfo };
      const { B, H, T, D, hd, scale, head, scores } = attentionLayout(qkv, attrs);
      const y = wb.makeOutput([B * T, D], 'float32');
      const p = wb.makeOutput([B * H, T, T], 'float32');
      const [x, P] = [offset(be, qkv), offset(be, p)];
      const common = { batch: B * H, H };
      // S = Q·Kᵀ (lower triangle), written where P goes; P = softmax(scale·S + mask) in place; Y = P·V, heads into
      // y's columns. Blocks the causal mask makes zero are skipped throughout.
      mm({
        ...common,
        M: T,
        N: T,
        K: hd,
        transA: false,
        transB: true,
        causal: 3,
        a: head(x, 3 * D),
        b: head(x + 4 * D, 3 * D),
        c: scores(P),
      });
      exports.causalSoftmax(P, P, B * H * T, T, scale);
      mm({
        ...common,
        M: T,
        N: hd,
        K: T,
        transA: false,
        transB: false,
        causal: 1,
        a: scores(P),
        b: head(x + 8 * D, 3 * D),
        c: head(offset(be, y), D),
      });
      return [y, p];
    },
  });
  tf.registerKernel({
    kernelName: AFT_ATTENTION_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend: be, attrs }) => {
      const wb = be as unknown as WasmBackendInternals;
      const { qkv, p, dy } = inputs as { qkv: tf.TensorInfo; p: tf.TensorInfo; dy: tf.TensorInfo };
      const { B, H, T, D, hd, scale, head, scores } = attentionLayout(qkv, attrs);
      const dqkv = wb.makeOutput(qkv.shape, 'float32');
      const [x, P, dY, dX] = [offset(be, qkv), offset(be, p), offset(be, dy), offset(be, dqkv)];
      const dS = attentionScratch(4 * B * H * T * T);
      const common = { batch: B * H, H };
      // dP = dY·Vᵀ; dS = scale·P⊙(dP − Σ dP·P) in place; dV = Pᵀ·dY; dQ = dS·K; dK = dSᵀ·Q
      mm({
        ...common,
        M: T,
        N: T,
        K: hd,
        transA: false,
        transB: true,
        causal: 3,
        a: head(dY, D),
        b: head(x + 8 * D, 3 * D),
        c: scores(dS),
      });
      exports.causalSoftmaxGrad(P, dS, dS, B * H * T, T, scale);
      mm({
        ...common,
        M: T,
        N: hd,
        K: T,
        transA: true,
        transB: false,
        causal: 2,
        a: scores(P),
        b: head(dY, D),
        c: head(dX + 8 * D, 3 * D),
      });
      mm({
        ...common,
        M: T,
        N: hd,
        K: T,
        transA: false,
        transB: false,
        causal: 1,
        a: scores(dS),
        b: head(x + 4 * D, 3 * D),
        c: head(dX, 3 * D),
      });
      mm({
        ...common,
        M: T,
        N: hd,
        K: T,
        transA: true,
        transB: false,
        causal: 2,
        a: scores(dS),
        b: head(x, 3 * D),
        c: head(dX + 4 * D, 3 * D),
      });
      return dqkv;
    },
  });
  tf.registerKernel({
    kernelName: AFT_ADAMW,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend: be, attrs }) => {
      const { p: pr, g, m, v } = inputs as Record<'p' | 'g' | 'm' | 'v', tf.TensorInfo>;
      const a = attrs as unknown as AdamWAttrs;
      const wb = be as unknown as WasmBackendInternals;
      const outs = [pr, m, v].map((t) => wb.makeOutput(t.shape, 'float32'));
      const n = tf.util.sizeFromShape(pr.shape);
      for (const t of [g, m, v]) {
        if (tf.util.sizeFromShape(t.shape) !== n) throw new Error(`${AFT_ADAMW}: tensors of different sizes`);
      }
      exports.adamw(
        offset(be, pr),
        offset(be, g),
        offset(be, m),
        offset(be, v),
        offset(be, outs[0]!),
        offset(be, outs[1]!),
        offset(be, outs[2]!),
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
    },
  });
  const checkTargets = (t: tf.TensorInfo, be: unknown, rows: number, v: number): number => {
    if (t.dtype !== 'int32' || tf.util.sizeFromShape(t.shape) !== rows) {
      throw new Error(`${AFT_TOKEN_LOGPROBS}: targets must be ${rows} int32 values`);
    }
    const at = offset(be, t);
    const ids = new Int32Array(memory.buffer, at, rows);
    for (const id of ids)
      if (!(id >= 0 && id < v)) throw new Error(`${AFT_TOKEN_LOGPROBS}: target ${id} outside 0..${v - 1}`);
    return at;
  };
  tf.registerKernel({
    kernelName: AFT_TOKEN_LOGPROBS,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend: be }) => {
      const { logits, targets } = inputs as { logits: tf.TensorInfo; targets: tf.TensorInfo };
      const [rows, v] = rowsOf(logits);
      const t = checkTargets(targets, be, rows, v);
      const out = (be as unknown as WasmBackendInternals).makeOutput([rows], 'float32');
      exports.tokenLogProbs(offset(be, logits), t, offset(be, out), rows, v);
      return out;
    },
  });
  tf.registerKernel({
    kernelName: AFT_TOKEN_LOGPROBS_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend: be }) => {
      const { logits, targets, dy } = inputs as { logits: tf.TensorInfo; targets: tf.TensorInfo; dy: tf.TensorInfo };
      const [rows, v] = rowsOf(logits);
      const t = checkTargets(targets, be, rows, v);
      const out = (be as unknown as WasmBackendInternals).makeOutput(logits.shape, 'float32');
      exports.tokenLogProbsGrad(offset(be, logits), t, offset(be, dy), offset(be, out), rows, v);
      return out;
    },
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
