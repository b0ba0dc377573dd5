/**
 * TensorFlow.js backend selection (docs/architecture.md "Data and backends"): `tensorflow` (tfjs-node-gpu, then tfjs-node, when
 * installed — optional dependencies that cannot install where libtensorflow cannot be downloaded), else `wasm`,
 * else `cpu`. `AFT_BACKEND` (or the `prefer` argument) forces one. The chosen backend is recorded with every run.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { installWasmKernels } from './kernels/wasm-kernels';

export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendInfo {
  name: BackendName;
  /** The package that provides it, e.g. `@tensorflow/tfjs-node-gpu`. */
  provider: string;
  /** Why earlier choices were skipped, for the run record. */
  skipped: string[];
  /** Our own kernels in use on this backend (wasm: `simd-bmm`, the SIMD batched matMul), or why not. */
  kernels?: string;
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
