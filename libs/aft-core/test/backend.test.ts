import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src';

describe('initBackend', () => {
  it('rejects an unknown backend by name, listing the valid ones', async () => {
    await expect(initBackend('tpu')).rejects.toThrow(
      /unknown backend "tpu"; choose one of tensorflow, webgpu, wasm, cpu/,
    );
  });

  it('falls back to wasm here (tfjs-node cannot install) and computes on it', async () => {
    const info = await initBackend(undefined);
    expect(['tensorflow', 'wasm']).toContain(info.name);
    if (info.name === 'wasm') expect(info.skipped.some((s) => s.includes('tfjs-node'))).toBe(true);
    // webgpu is not chosen on its own (the trainer does not run on it yet), and why is kept
    if (info.name === 'wasm')
      expect(info.skipped).toContain('webgpu: only with AFT_BACKEND=webgpu until the trainer runs on it (issue 18)');
    expect(tf.getBackend()).toBe(info.name);
    const y = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])));
    expect(await y.data()).toEqual(new Float32Array([11]));
    y.dispose();
    expect(await initBackend(undefined)).toBe(info); // chosen once per process
  });
});
