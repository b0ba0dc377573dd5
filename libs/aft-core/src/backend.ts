/**
 * TensorFlow.js backend selection (docs/architecture.md "Data and backends"): `tensorflow` (tfjs-node-gpu, then tfjs-node, when
 * installed — optional dependencies that cannot install where libtensorflow cannot be downloaded), else `webgpu`
 * when a hardware GPU adapter is present (`./webgpu`), else `wasm`, else `cpu`. `AFT_BACKEND` (or the `prefer`
 * argument) forces one; a software WebGPU adapter (lavapipe) is used only when asked for, and `skipped` says why
 * webgpu was passed over. The chosen backend is recorded with every run (`backendRecord`).
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { installWasmKernels } from './kernels/wasm-kernels';
import { installWebGpuKernels } from './kernels/webgpu/webgpu-kernels';
import { initWebGpu, type AdapterInfo } from './webgpu';

export type { AdapterInfo } from './webgpu';
export const BACKENDS = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendInfo {
  name: BackendName;
  /** The package that provides it, e.g. `@tensorflow/tfjs-node-gpu`. */
  provider: string;
  /** Why earlier choices were skipped, for the run record. */
  skipped: string[];
  /** Our own kernels in use on this backend (wasm: `simd-bmm`, the SIMD batched matMul; webgpu: `wgsl: …`), or why not. */
  kernels?: string;
  /** webgpu: the adapter (vendor, architecture, limits; `software` for lavapipe). */
  adapter?: AdapterInfo;
}

const require = createRequire(import.meta.url);
let chosen: BackendInfo | null = null;

async function tryTensorflow(skipped: string[]): Promise<string | null> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(/* @vite-ignore */ pkg);
      if (await tf.setBackend('tensorflow')) return pkg;
      skipped.push(`${pkg}: backend did not initialise`);
    } catch (e) {
      skipped.push(`${pkg}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  return null;
}

async function tryWasm(skipped: string[]): Promise<boolean> {
  try {
    // The .wasm binaries ship inside the npm package; nothing is fetched.
    setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'))}/`);
    if (await tf.setBackend('wasm')) return true;
    skipped.push('wasm: backend did not initialise');
  } catch (e) {
    skipped.push(`wasm: ${(e as Error).message.split('\n')[0]}`);
  }
  return false;
}

/**
 * Installs our SIMD kernels on the wasm backend unless `AFT_WASM_KERNELS=off`; a failure falls back to tfjs's
 * kernels (slower, same results) and says why.
 */
async function wasmKernels(): Promise<string> {
  if (process.env['AFT_WASM_KERNELS'] === 'off') return 'tfjs (AFT_WASM_KERNELS=off)';
  try {
    await installWasmKernels();
    return 'simd-bmm';
  } catch (e) {
    return `tfjs (our kernels failed to load: ${(e as Error).message.split('\n')[0]})`;
  }
}

/** Selects and initialises the backend once per process; later calls return the same choice. */
export async function initBackend(prefer: string | undefined = process.env['AFT_BACKEND']): Promise<BackendInfo> {
  if (chosen) return chosen;
  if (prefer && !(BACKENDS as readonly string[]).includes(prefer)) {
    throw new Error(`unknown backend "${prefer}"; choose one of ${BACKENDS.join(', ')}`);
  }
  const skipped: string[] = [];
  const want = prefer as BackendName | undefined;
  if (!want || want === 'tensorflow') {
    const pkg = await tryTensorflow(skipped);
    if (pkg) return (chosen = { name: 'tensorflow', provider: pkg, skipped });
    if (want) throw new Error(`backend "tensorflow" is not available: ${skipped.join('; ')}`);
  }
  if (!want || want === 'webgpu') {
    try {
      // automatic: a hardware adapter only (vulkanPrecheck passes over a lavapipe-only host before Dawn loads)
      const adapter = await initWebGpu(want === 'webgpu');
      // our WGSL attention and AdamW (kernels/webgpu), unless AFT_WEBGPU_KERNELS=off
      const ours = installWebGpuKernels();
      const kernels = ours.length ? `wgsl: ${ours.join(', ')}` : 'tfjs (AFT_WEBGPU_KERNELS=off)';
      return (chosen = { name: 'webgpu', provider: '@tensorflow/tfjs-backend-webgpu', skipped, adapter, kernels });
    } catch (e) {
      if (want) throw new Error(`backend "webgpu" is not available: ${(e as Error).message}`, { cause: e });
      skipped.push(`webgpu: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  if (!want || want === 'wasm') {
    if (await tryWasm(skipped)) {
      return (chosen = {
        name: 'wasm',
        provider: '@tensorflow/tfjs-backend-wasm',
        skipped,
        kernels: await wasmKernels(),
      });
    }
    if (want) throw new Error(`backend "wasm" is not available: ${skipped.join('; ')}`);
  }
  await tf.setBackend('cpu');
  await tf.ready();
  return (chosen = { name: 'cpu', provider: '@tensorflow/tfjs-backend-cpu', skipped });
}

/** Past this a record's `backend.skipped` is cut: it stays a parameter any tracking server takes (older MLflow: 500). */
const MAX_SKIPPED_CHARS = 500;

/** Past this an adapter line is cut: the fleet registry takes 200 characters a field (libs/queue fleet.ts). */
const MAX_ADAPTER_CHARS = 200;

/**
 * The adapter in one readable line: vendor, architecture, device and description, empty and repeated parts left
 * out, at most MAX_ADAPTER_CHARS (a driver's long description would otherwise fail a run's start and the fleet).
 */
function adapterLine(a: AdapterInfo): string {
  const parts = [a.vendor, a.architecture, a.device, a.description].map((x) => (x ?? '').trim()).filter(Boolean);
  const line = [...new Set(parts)].join(', ');
  return line.length > MAX_ADAPTER_CHARS ? `${line.slice(0, MAX_ADAPTER_CHARS - 1)}…` : line;
}

/**
 * The backend as flat string parameters for a run's record (docs/architecture.md "Data and backends"): `backend`,
 * `backend.provider`, `backend.kernels` when set, `backend.skipped` (why earlier choices were passed over) when any,
 * and on webgpu the adapter and whether it is software, with its buffer and workgroup-memory limits.
 */
export function backendRecord(info: BackendInfo): Record<string, string> {
  const r: Record<string, string> = { backend: info.name, 'backend.provider': info.provider };
  if (info.kernels) r['backend.kernels'] = info.kernels;
  if (info.skipped.length) {
    const all = info.skipped.join('; ');
    r['backend.skipped'] = all.length > MAX_SKIPPED_CHARS ? `${all.slice(0, MAX_SKIPPED_CHARS - 1)}…` : all;
  }
  const a = info.adapter;
  if (a) {
    r['backend.adapter'] = adapterLine(a);
    r['backend.adapter.software'] = String(a.software);
    r['backend.adapter.maxStorageBufferBindingSize'] = String(a.limits.maxStorageBufferBindingSize);
    r['backend.adapter.maxBufferSize'] = String(a.limits.maxBufferSize);
    r['backend.adapter.maxComputeWorkgroupStorageSize'] = String(a.limits.maxComputeWorkgroupStorageSize);
  }
  return r;
}
