/**
 * The `webgpu` backend (docs/architecture.md "Data and backends"): TensorFlow.js's WebGPU backend on Dawn's Node
 * bindings (the npm package `webgpu`; `dawn.node` ships inside it) over Vulkan. Both packages are optional
 * dependencies, imported only when this backend is probed. Software Vulkan for tests: tools/install-lavapipe.sh.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';

/** The adapter a webgpu run trained on, for the run record. */
export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A software adapter (lavapipe, SwiftShader): correct, and slower than the wasm backend. */
  software: boolean;
  limits: { maxStorageBufferBindingSize: number; maxBufferSize: number; maxComputeWorkgroupStorageSize: number };
}

// the few members of the WebGPU API used here (the full types are @webgpu/types, which the project does not need)
interface Adapter {
  info: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter?: boolean };
  limits: AdapterInfo['limits'];
}
interface Gpu {
  requestAdapter(options?: { powerPreference?: string }): Promise<Adapter | null>;
}

const INSTALL_HINT =
  'for software Vulkan run `bash tools/install-lavapipe.sh` and export the VK_ICD_FILENAMES and LD_LIBRARY_PATH it prints';

const LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib64', '/lib'];
const ICD_DIRS = ['/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/usr/share/vulkan/icd.d'];

/** Where the loader looks for Vulkan drivers: the files named by VK_ICD_FILENAMES/VK_DRIVER_FILES, else its dirs. */
function icdFiles(env: NodeJS.ProcessEnv): string[] {
  const named = env['VK_DRIVER_FILES'] || env['VK_ICD_FILENAMES'];
  if (named) return named.split(delimiter).filter((f) => existsSync(f));
  return ICD_DIRS.flatMap((d) => {
    try {
      return readdirJson(d);
    } catch {
      return [];
    }
  });
}

function readdirJson(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => join(dir, f));
}

/**
 * Why WebGPU cannot work here, found without loading Dawn (which prints its own warnings): no Vulkan loader, or no
 * Vulkan driver. `softwareOnly` when every driver is Mesa's lavapipe, which automatic selection passes over.
 */
export function vulkanPrecheck(env: NodeJS.ProcessEnv = process.env): { missing?: string; softwareOnly: boolean } {
  const dirs = [...(env['LD_LIBRARY_PATH'] ?? '').split(':').filter(Boolean), ...LIB_DIRS];
  if (!dirs.some((d) => existsSync(join(d, 'libvulkan.so.1')))) {
    return {
      missing: `the Vulkan loader libvulkan.so.1 is not installed (Debian: libvulkan1); ${INSTALL_HINT}`,
      softwareOnly: false,
    };
  }
  const icds = icdFiles(env);
  if (icds.length === 0) {
    return {
      missing: `no Vulkan driver is installed (no ICD json in ${ICD_DIRS.join(', ')} or VK_ICD_FILENAMES); ${INSTALL_HINT}`,
      softwareOnly: false,
    };
  }
  const soft = icds.every((f) => /lvp|swiftshader/i.test(`${f} ${safeRead(f)}`));
  return { softwareOnly: soft };
}

function safeRead(f: string): string {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return '';
  }
}

function describe(a: Adapter): AdapterInfo {
  const i = a.info;
  const software =
    i.isFallbackAdapter === true ||
    [i.vendor, i.device, i.description, i.architecture].some((x) =>
      /llvmpipe|lavapipe|swiftshader|^software$|^cpu$/i.test(x ?? ''),
    );
  return {
    vendor: i.vendor,
    architecture: i.architecture,
    device: i.device,
    description: i.description,
    software,
    limits: {
      maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize,
      maxBufferSize: a.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: a.limits.maxComputeWorkgroupStorageSize,
    },
  };
}

/**
 * Initialises tfjs's WebGPU backend. `allowSoftware`: whether a software adapter will do (only when the backend
 * was asked for by name). Throws an error naming what is missing: the package, Vulkan, or an adapter.
 */
export async function initWebGpu(allowSoftware: boolean): Promise<AdapterInfo> {
  const pre = vulkanPrecheck();
  if (pre.missing) throw new Error(pre.missing);
  if (pre.softwareOnly && !allowSoftware) {
    throw new Error('only a software Vulkan driver (lavapipe) is installed; AFT_BACKEND=webgpu uses it');
  }
  let create: (flags: string[]) => Gpu;
  let globals: object;
  try {
    ({ create, globals } = (await import(/* @vite-ignore */ 'webgpu')) as { create: typeof create; globals: object });
  } catch (e) {
    throw new Error(
      `the optional package "webgpu" (Dawn for Node) is not installed: ${(e as Error).message.split('\n')[0]}`,
      { cause: e },
    );
  }
  const gpu = create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter)
    throw new Error(`no WebGPU adapter: is a Vulkan driver installed (Dawn's messages above say why)? ${INSTALL_HINT}`);
  const info = describe(adapter);
  if (info.software && !allowSoftware) {
    throw new Error(`only a software adapter (${info.description || info.device}); AFT_BACKEND=webgpu uses it`);
  }
  // tfjs-backend-webgpu registers itself on import only if navigator.gpu exists then; Node 21+ has its own navigator
  Object.assign(globalThis, globals);
  const nav = (globalThis as { navigator?: object }).navigator;
  if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  try {
    await import(/* @vite-ignore */ '@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    throw new Error(
      `the optional package "@tensorflow/tfjs-backend-webgpu" is not installed: ${(e as Error).message.split('\n')[0]}`,
      { cause: e },
    );
  }
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs-backend-webgpu did not initialise on this adapter');
  await tf.ready();
  chunkAddN();
  return info;
}

interface WebGpuBackendLike {
  device: { limits: { maxStorageBuffersPerShaderStage: number } };
  disposeData(dataId: object): void;
}

/**
 * tfjs-webgpu's AddN binds every input in one shader; past the device's storage-buffer limit (8 by default, so 7
 * inputs) the pipeline is invalid and the result silently wrong (a global gradient norm over 29 parameters was).
 * This AddN sums at most limit−1 inputs per dispatch, in rounds.
 */
function chunkAddN(): void {
  const orig = tf.getKernel('AddN', 'webgpu');
  if (!orig) return;
  tf.unregisterKernel('AddN', 'webgpu');
  tf.registerKernel({
    kernelName: 'AddN',
    backendName: 'webgpu',
    kernelFunc: (args) => {
      const backend = args.backend as unknown as WebGpuBackendLike;
      const max = Math.max(2, backend.device.limits.maxStorageBuffersPerShaderStage - 1);
      let inputs = args.inputs as unknown as tf.TensorInfo[];
      const partial: tf.TensorInfo[] = [];
      while (inputs.length > max) {
        const next: tf.TensorInfo[] = [];
        for (let i = 0; i < inputs.length; i += max) {
          const part = inputs.slice(i, i + max);
          if (part.length === 1) next.push(part[0]!);
          else {
            const sum = orig.kernelFunc({ ...args, inputs: part as unknown as tf.NamedTensorInfoMap }) as tf.TensorInfo;
            partial.push(sum);
            next.push(sum);
          }
        }
        inputs = next;
      }
      const out = orig.kernelFunc({ ...args, inputs: inputs as unknown as tf.NamedTensorInfoMap });
      for (const t of partial) backend.disposeData(t.dataId);
      return out;
    },
  });
}
