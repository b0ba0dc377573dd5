/**
 * Our own kernels for tfjs-backend-wasm, registered under names of their own (tfjs's kernels stay as they are).
 * They run in the backend's linear memory: inputs and outputs are the backend's tensors, no copies.
 *
 * `AftBatchMatMul` (bmm.wat.ts): batched matMul with transpose flags at SIMD speed, where tfjs-wasm falls back to a
 * scalar loop. On other backends `batchMatMul` below calls tf.matMul, so callers need not care.
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
export const AFT_CAUSAL_SOFTMAX = 'AftCausalSoftmax';
export const AFT_CAUSAL_SOFTMAX_GRAD = 'AftCausalSoftmaxGrad';

interface WasmBackendInternals {
  incRef(dataId: object): void;
  wasm: { asm: { memory: WebAssembly.Memory }; _malloc(n: number): number; _free(p: number): void };
  dataIdMap: { get(id: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
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
}

async function assemble(name: string, wat: string, memory: WebAssembly.Memory): Promise<WebAssembly.Instance> {
  const wabt = await (await import('wabt')).default();
  const mod = wabt.parseWat(name, wat, { simd: true });
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

  // scratch for the packed operands, grown on demand (freed and re-allocated: its contents never outlive a call)
  let scratch = 0;
  let scratchBytes = 0;
  const ensureScratch = (bytes: number): number => {
    if (bytes > scratchBytes) {
      if (scratch) backend.wasm._free(scratch);
      scratchBytes = Math.max(bytes, scratchBytes * 2, 1 << 16);
      scratch = backend.wasm._malloc(scratchBytes);
    }
    return scratch;
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
      const nPad = Math.ceil(N / 8) * 8;
      const apBytes = 4 * K * (transposeA ? Math.ceil(M / 4) * 4 : 4);
      const bpBytes = 4 * K * nPad;
      const base = ensureScratch(apBytes + bpBytes + 4 * nPad);
      exports.bmm(
        offset(wb, a),
        offset(wb, b),
        offset(wb, out),
        batch,
        M,
        N,
        K,
        transposeA ? 1 : 0,
        transposeB ? 1 : 0,
        ba === 1 ? 0 : M * K,
        bb === 1 ? 0 : K * N,
        base,
        base + apBytes,
        bias ? offset(wb, bias) : 0,
        base + apBytes + bpBytes,
      );
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
