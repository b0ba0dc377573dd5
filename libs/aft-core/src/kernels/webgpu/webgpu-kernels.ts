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
  attentionOutput,
  attentionProbs,
  attentionQkvGrad,
  attentionScoresGrad,
  type AttentionShape,
  type Program,
  type Uniform,
} from './programs';

/** The members of tfjs-backend-webgpu's WebGPUBackend used here. */
interface WebGpuBackendLike {
  device: { limits: { maxStorageBufferBindingSize: number; maxBufferSize: number } };
  runWebGPUProgram(program: Program, inputs: tf.TensorInfo[], dtype: 'float32', uniforms?: Uniform[]): tf.TensorInfo;
  disposeData(dataId: object): void;
}

/** Runs one of our programs, with the uniform values it carries. */
const run = (be: WebGpuBackendLike, program: Program, inputs: tf.TensorInfo[]): tf.TensorInfo =>
  be.runWebGPUProgram(program, inputs, 'float32', program.uniformData);

export const WEBGPU_KERNELS = [AFT_ATTENTION, AFT_ATTENTION_GRAD, AFT_ADAMW] as const;

/**
 * The one limit on our kernels' size: every tensor they bind must fit the device's maxStorageBufferBindingSize and
 * maxBufferSize (read when they are installed; until then WebGPU's default, 128 MiB, lavapipe's too). Past it Dawn
 * rejects the buffer or bind group with a validation error that is printed, not thrown, and skips the dispatch:
 * training would go on with garbage. Capped at 2³⁰ elements, so the shaders' i32 indices (tfjs's global index too)
 * cannot overflow. The number of workgroups is no limit: tfjs reshapes a large dispatch (programs.ts). tfjs's own
 * path binds tensors as large (the composite's scores have P's shape; the unfused AdamW works on whole parameters),
 * so past this limit neither path runs on webgpu; the callers' fallback only keeps our kernels out of it.
 */
const DEFAULT_MAX_BINDING_BYTES = 128 * 1024 * 1024;
const maxElementsOf = (bytes: number) => Math.min(Math.floor(bytes / 4), 2 ** 30);
let maxElements = maxElementsOf(DEFAULT_MAX_BINDING_BYTES);

/** The most float32 elements a tensor our kernels bind may have (webGpuKernelsFit). */
export const webGpuKernelsMaxElements = (): number => maxElements;
/** Whether our kernels can run where the largest tensor they bind has `elements` float32s. */
export const webGpuKernelsFit = (elements: number): boolean => elements <= maxElements;
/** webGpuKernelsFit for attention, whose largest tensors are qkv and dqkv [B·T, 3D], or P and dS [B·H, T, T]. */
export const webGpuAttentionFits = (B: number, H: number, T: number, D: number): boolean =>
  webGpuKernelsFit(Math.max(B * T * 3 * D, B * H * T * T));

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
  const webgpu = tf.findBackend('webgpu') as unknown as WebGpuBackendLike | undefined;
  if (!webgpu) throw new Error('the webgpu backend is not initialised');
  const { maxStorageBufferBindingSize, maxBufferSize } = webgpu.device.limits;
  maxElements = maxElementsOf(Math.min(maxStorageBufferBindingSize, maxBufferSize));
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
    const p = run(be, attentionProbs(s), [qkv!]);
    return [run(be, attentionOutput(s), [qkv!, p]), p];
  });
  register(AFT_ATTENTION_GRAD, (be, { qkv, p, dy }, attrs) => {
    const s = attentionShape(qkv!, attrs as unknown as AttentionAttrs, AFT_ATTENTION_GRAD);
    check(AFT_ATTENTION_GRAD, p!, [s.B * s.H, s.T, s.T]);
    check(AFT_ATTENTION_GRAD, dy!, [s.B * s.T, s.H * s.hd]);
    const ds = run(be, attentionScoresGrad(s), [qkv!, p!, dy!]);
    const dqkv = run(be, attentionQkvGrad(s), [qkv!, p!, ds, dy!]);
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
    const a = attrs as unknown as AdamWAttrs;
    return (['p', 'm', 'v'] as const).map((which) => run(be, adamw(which, p!.shape, a), [p!, g!, m!, v!]));
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
