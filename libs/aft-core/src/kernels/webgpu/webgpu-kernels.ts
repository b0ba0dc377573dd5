/**
 * Our own kernels for tfjs-backend-webgpu (issue 18, "Speed where it matters"), registered under the names the
 * wasm kernels have (kernels/wasm-kernels.ts), so the same wrappers — `attentionKernel`, `attentionGradKernel`,
 * `adamwKernel` — run them on webgpu. WGSL in ./programs.ts, through the backend's `runWebGPUProgram`.
 *
 * Chosen by the webgpu profile of a training step (`npm run bench:train -- --backend webgpu`, tools/bench): the
 * attention composite (split, head transposes, batched products, scale, mask, softmax, merge, and their gradients)
 * was the largest part of the tiny GPT's step on lavapipe, and AdamW's unfused update the most kernel calls (~16
 * dispatches per parameter tensor, which on a real GPU cost CPU time each).
 *
 * - `AftAttention` (qkv [B·T, 3D] → [y [B·T, D], P [B·H, T, T]]): 2 dispatches, P kept for the backward.
 * - `AftAttentionGrad` (qkv, P, dy → dqkv): 2 dispatches (dS, then dq | dk | dv).
 * - `AftAdamW` (p, g, m, v → [p', m', v']): 3 dispatches, one per output.
 *
 * Installed by `installWebGpuKernels()` once the webgpu backend is ready. The model reaches them where its callers
 * check `usingWebGpuKernels()` beside `usingWasmKernels()`; `AFT_WEBGPU_KERNELS=off` leaves them out.
 */
import * as tf from '@tensorflow/tfjs';
import { AFT_ADAMW, AFT_ATTENTION, AFT_ATTENTION_GRAD, type AdamWAttrs, type AttentionAttrs } from '../wasm-kernels';
import {
  adamw,
  adamwUniforms,
  attentionOutput,
  attentionProbs,
  attentionQkvGrad,
  attentionScoresGrad,
  attentionUniforms,
  type AttentionShape,
  type Program,
  type Uniform,
} from './programs';

/** The members of tfjs-backend-webgpu's WebGPUBackend used here. */
interface WebGpuBackendLike {
  runWebGPUProgram(program: Program, inputs: tf.TensorInfo[], dtype: 'float32', uniforms?: Uniform[]): tf.TensorInfo;
  disposeData(dataId: object): void;
}

export const WEBGPU_KERNELS = [AFT_ATTENTION, AFT_ATTENTION_GRAD, AFT_ADAMW] as const;

/**
 * Our programs dispatch one-dimensionally (programs.ts `flat`), 64 invocations a workgroup, and WebGPU allows at most
 * 65,535 workgroups per dimension: past this many outputs Dawn would skip the dispatch and training would go on with
 * garbage. Callers take the tfjs path for anything larger (the medium preset's attention past batch ~10, a parameter
 * of more than 4.19M elements).
 */
export const WEBGPU_KERNEL_MAX_INVOCATIONS = 65_535 * 64;
export const webGpuKernelsFit = (invocations: number): boolean => invocations <= WEBGPU_KERNEL_MAX_INVOCATIONS;

let installed = false;
let enabled = true;

function attentionShape(qkv: tf.TensorInfo, attrs: AttentionAttrs, name: string): AttentionShape {
  const { batch: B, heads: H, scale } = attrs;
  const [rows, D3] = qkv.shape as [number, number];
  const T = rows / B;
  const hd = D3 / 3 / H;
  if (qkv.shape.length !== 2 || qkv.dtype !== 'float32' || !Number.isInteger(T) || !Number.isInteger(hd)) {
    throw new Error(`${name}: qkv of shape [${qkv.shape}] (${qkv.dtype}) for batch ${B} and ${H} heads`);
  }
  return { B, H, T, hd, scale };
}

function check(name: string, t: tf.TensorInfo, shape: number[]): void {
  if (t.dtype !== 'float32' || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${name}: expected float32 [${shape}], got ${t.dtype} [${t.shape}]`);
  }
}

/**
 * Registers the kernels with the webgpu backend (once per process). Needs the backend initialised (after
 * `tf.setBackend('webgpu')`); a no-op where it is not registered or AFT_WEBGPU_KERNELS=off. Returns the kernel
 * names now in use, for the run record.
 */
export function installWebGpuKernels(): readonly string[] {
  if (process.env['AFT_WEBGPU_KERNELS'] === 'off') return [];
  if (installed) return WEBGPU_KERNELS;
  if (!tf.findBackend('webgpu')) throw new Error('the webgpu backend is not initialised');
  type Inputs = Record<string, tf.TensorInfo>;
  const register = (
    kernelName: string,
    f: (be: WebGpuBackendLike, inputs: Inputs, attrs: Record<string, unknown>) => tf.TensorInfo | tf.TensorInfo[],
  ) =>
    tf.registerKernel({
      kernelName,
      backendName: 'webgpu',
      kernelFunc: ({ inputs, attrs, backend }) =>
        f(backend as unknown as WebGpuBackendLike, inputs as Inputs, attrs as Record<string, unknown>),
    });

  register(AFT_ATTENTION, (be, { qkv }, attrs) => {
    const s = attentionShape(qkv!, attrs as unknown as AttentionAttrs, AFT_ATTENTION);
    const p = be.runWebGPUProgram(attentionProbs(s), [qkv!], 'float32', attentionUniforms(s, s.B * s.H * s.T));
    const D = s.H * s.hd;
    const y = be.runWebGPUProgram(attentionOutput(s), [qkv!, p], 'float32', attentionUniforms(s, s.B * s.T * D));
    return [y, p];
  });
  register(AFT_ATTENTION_GRAD, (be, { qkv, p, dy }, attrs) => {
    const s = attentionShape(qkv!, attrs as unknown as AttentionAttrs, AFT_ATTENTION_GRAD);
    const D = s.H * s.hd;
    check(AFT_ATTENTION_GRAD, p!, [s.B * s.H, s.T, s.T]);
    check(AFT_ATTENTION_GRAD, dy!, [s.B * s.T, D]);
    const rows = s.B * s.H * s.T;
    const ds = be.runWebGPUProgram(attentionScoresGrad(s), [qkv!, p!, dy!], 'float32', attentionUniforms(s, rows));
    const dqkv = be.runWebGPUProgram(
      attentionQkvGrad(s),
      [qkv!, p!, ds, dy!],
      'float32',
      attentionUniforms(s, s.B * s.T * 3 * D),
    );
    be.disposeData(ds.dataId); // released once the queued dispatch that reads it has run
    return dqkv;
  });
  register(AFT_ADAMW, (be, { p, g, m, v }, attrs) => {
    const n = tf.util.sizeFromShape(p!.shape);
    for (const t of [p!, g!, m!, v!]) {
      if (tf.util.sizeFromShape(t.shape) !== n || t.dtype !== 'float32') {
        throw new Error(`${AFT_ADAMW}: tensors of different sizes or not float32`);
      }
    }
    const u = adamwUniforms(n, attrs as unknown as AdamWAttrs);
    return (['p', 'm', 'v'] as const).map((which) =>
      be.runWebGPUProgram(adamw(which, p!.shape), [p!, g!, m!, v!], 'float32', u),
    );
  });
  installed = true;
  return WEBGPU_KERNELS;
}

/** Whether the model should call our kernels: the webgpu backend is active and they are installed and enabled. */
export function usingWebGpuKernels(): boolean {
  return installed && enabled && tf.getBackend() === 'webgpu';
}

/** Switches our kernels off and on again (benchmarks compare both in one process); returns the previous setting. */
export function setWebGpuKernelsEnabled(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}
