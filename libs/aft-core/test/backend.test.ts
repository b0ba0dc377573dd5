import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { backendRecord, initBackend, type BackendInfo } from '../src';
import { initWebGpu, vulkanPrecheck } from '../src/webgpu';

describe('initBackend', () => {
  it('rejects an unknown backend by name, listing the valid ones', async () => {
    await expect(initBackend('tpu')).rejects.toThrow(
      /unknown backend "tpu"; choose one of tensorflow, webgpu, wasm, cpu/,
    );
  });

  it('chooses on its own (wasm here: no tfjs-node, no hardware GPU) and computes on it', async () => {
    const info = await initBackend(undefined);
    expect(['tensorflow', 'webgpu', 'wasm']).toContain(info.name);
    if (info.name === 'webgpu') expect(info.adapter?.software).toBe(false); // a software adapter only when asked
    if (info.name === 'wasm') {
      expect(info.skipped.some((s) => s.includes('tfjs-node'))).toBe(true);
      // why webgpu was passed over is kept: no Vulkan, a software driver only, no hardware adapter
      expect(
        info.skipped.some((s) => /^webgpu: \S/.test(s)),
        info.skipped.join('\n'),
      ).toBe(true);
    }
    expect(tf.getBackend()).toBe(info.name);
    const y = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])));
    expect(await y.data()).toEqual(new Float32Array([11]));
    y.dispose();
    expect(await initBackend(undefined)).toBe(info); // chosen once per process
    expect(backendRecord(info)).toMatchObject({ backend: info.name, 'backend.provider': info.provider });
  });
});

describe('backendRecord', () => {
  it('flattens a webgpu backend and its adapter into string parameters', () => {
    const info: BackendInfo = {
      name: 'webgpu',
      provider: '@tensorflow/tfjs-backend-webgpu',
      skipped: ['@tensorflow/tfjs-node-gpu: Cannot find package'],
      adapter: {
        vendor: 'nvidia',
        architecture: 'hopper',
        device: 'NVIDIA H200',
        description: 'NVIDIA H200',
        software: false,
        limits: { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 32, maxComputeWorkgroupStorageSize: 32768 },
      },
    };
    expect(backendRecord(info)).toEqual({
      backend: 'webgpu',
      'backend.provider': '@tensorflow/tfjs-backend-webgpu',
      'backend.skipped': '@tensorflow/tfjs-node-gpu: Cannot find package',
      'backend.adapter': 'nvidia, hopper, NVIDIA H200', // the repeated description left out
      'backend.adapter.software': 'false',
      'backend.adapter.maxStorageBufferBindingSize': '2147483648',
      'backend.adapter.maxBufferSize': '4294967296',
      'backend.adapter.maxComputeWorkgroupStorageSize': '32768',
    });
  });

  it('cuts a long adapter line to the 200 characters the fleet registry takes', () => {
    const r = backendRecord({
      name: 'webgpu',
      provider: 'p',
      skipped: [],
      adapter: {
        vendor: 'v',
        architecture: 'a',
        device: 'd',
        description: 'x'.repeat(5_000),
        software: true,
        limits: { maxStorageBufferBindingSize: 1, maxBufferSize: 1, maxComputeWorkgroupStorageSize: 1 },
      },
    });
    expect(r['backend.adapter']).toHaveLength(200);
    expect(r['backend.adapter']!.startsWith('v, a, d, xxx')).toBe(true);
    expect(r['backend.adapter']!.endsWith('…')).toBe(true);
  });

  it('names wasm’s kernels, and cuts a long list of skipped backends to a parameter’s length', () => {
    const r = backendRecord({
      name: 'wasm',
      provider: '@tensorflow/tfjs-backend-wasm',
      skipped: Array.from({ length: 20 }, (_, i) => `backend ${i}: ${'x'.repeat(40)}`),
      kernels: 'simd-bmm',
    });
    expect(r).toMatchObject({ backend: 'wasm', 'backend.kernels': 'simd-bmm' });
    expect(r['backend.skipped']).toHaveLength(500);
    expect(r['backend.skipped']!.endsWith('…')).toBe(true);
    expect(Object.keys(r).some((k) => k.startsWith('backend.adapter'))).toBe(false);
    expect(backendRecord({ name: 'cpu', provider: 'p', skipped: [] })).toEqual({
      backend: 'cpu',
      'backend.provider': 'p',
    });
  });
});

/**
 * initWebGpu's errors past the Vulkan precheck, with the `webgpu` package (Dawn) replaced: a fake Vulkan loader and
 * driver file get past the precheck, which only looks for them, and the replacement answers as a host without the
 * package, without an adapter, or with only a software one would.
 */
describe('initWebGpu says what is missing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aft-backend-'));
  const saved = { ld: process.env['LD_LIBRARY_PATH'], icd: process.env['VK_ICD_FILENAMES'] };
  const adapter = (description: string) => ({
    info: { vendor: 'v', architecture: '', device: 'slug', description },
    limits: { maxStorageBufferBindingSize: 1, maxBufferSize: 1, maxComputeWorkgroupStorageSize: 1 },
  });
  const fakeDawn = (a: ReturnType<typeof adapter> | null) => () => ({
    create: () => ({ requestAdapter: async () => a }),
    globals: {},
  });

  beforeAll(() => {
    writeFileSync(join(dir, 'libvulkan.so.1'), '');
    writeFileSync(join(dir, 'gpu_icd.json'), JSON.stringify({ ICD: { library_path: join(dir, 'libgpu.so') } }));
    process.env['LD_LIBRARY_PATH'] = dir;
    process.env['VK_ICD_FILENAMES'] = join(dir, 'gpu_icd.json');
  });
  afterEach(() => {
    vi.doUnmock('webgpu');
    vi.doUnmock('@tensorflow/tfjs-backend-webgpu');
    vi.resetModules();
  });
  afterAll(() => {
    for (const [k, v] of [
      ['LD_LIBRARY_PATH', saved.ld],
      ['VK_ICD_FILENAMES', saved.icd],
    ] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('the Vulkan loader or driver, before Dawn is loaded', () => {
    const systemLoader = ['/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib'].some((d) =>
      existsSync(join(d, 'libvulkan.so.1')),
    );
    const noLoader = vulkanPrecheck({ LD_LIBRARY_PATH: join(dir, 'none') });
    if (systemLoader) expect(noLoader.missing ?? '').not.toMatch(/loader/);
    else expect(noLoader.missing).toMatch(/the Vulkan loader libvulkan\.so\.1 is not installed/);
    expect(vulkanPrecheck({ LD_LIBRARY_PATH: dir, VK_ICD_FILENAMES: join(dir, 'none.json') }).missing).toMatch(
      /no Vulkan driver is installed.*tools\/install-lavapipe\.sh/,
    );
    expect(vulkanPrecheck({ LD_LIBRARY_PATH: dir, VK_ICD_FILENAMES: join(dir, 'gpu_icd.json') })).toEqual({
      softwareOnly: false,
    });
    writeFileSync(join(dir, 'lvp_icd.json'), '{}');
    expect(vulkanPrecheck({ LD_LIBRARY_PATH: dir, VK_ICD_FILENAMES: join(dir, 'lvp_icd.json') })).toEqual({
      softwareOnly: true,
    });
  });

  it('the optional package "webgpu"', async () => {
    vi.doMock('webgpu', () => {
      throw new Error('Cannot find package "webgpu"');
    });
    await expect(initWebGpu(true)).rejects.toThrow(/the optional package "webgpu" \(Dawn for Node\) is not installed/);
  });

  it('an adapter', async () => {
    vi.doMock('webgpu', fakeDawn(null));
    await expect(initWebGpu(true)).rejects.toThrow(/no WebGPU adapter: .*tools\/install-lavapipe\.sh/);
  });

  it('a hardware adapter, when only a software one is there and webgpu was not asked for', async () => {
    vi.doMock('webgpu', fakeDawn(adapter('llvmpipe (LLVM 19.1.7, 256 bits)')));
    await expect(initWebGpu(false)).rejects.toThrow(
      'only a software adapter (llvmpipe (LLVM 19.1.7, 256 bits)); AFT_BACKEND=webgpu uses it',
    );
  });

  it('the optional package "@tensorflow/tfjs-backend-webgpu"', async () => {
    vi.doMock('webgpu', fakeDawn(adapter('NVIDIA H200')));
    vi.doMock('@tensorflow/tfjs-backend-webgpu', () => {
      throw new Error('Cannot find package');
    });
    await expect(initWebGpu(false)).rejects.toThrow(
      /the optional package "@tensorflow\/tfjs-backend-webgpu" is not installed/,
    );
  });
});
