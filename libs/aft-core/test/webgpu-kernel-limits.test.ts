/**
 * Our WGSL programs dispatch one-dimensionally; past WebGPU's 65,535 workgroups of 64 Dawn skips a dispatch and the
 * result is garbage, so the model and AdamW take tfjs's path there (kernels/webgpu/webgpu-kernels.ts).
 */
import { describe, expect, it } from 'vitest';
import { MODEL_PRESETS } from '../src/model/config';
import { WEBGPU_KERNEL_MAX_INVOCATIONS, webGpuKernelsFit } from '../src/kernels/webgpu/webgpu-kernels';

describe('webgpu kernel size limit', () => {
  it('is the 1-D dispatch limit: 65,535 workgroups of 64', () => {
    expect(WEBGPU_KERNEL_MAX_INVOCATIONS).toBe(65_535 * 64);
    expect(webGpuKernelsFit(WEBGPU_KERNEL_MAX_INVOCATIONS)).toBe(true);
    expect(webGpuKernelsFit(WEBGPU_KERNEL_MAX_INVOCATIONS + 1)).toBe(false);
  });

  it('sends the medium preset’s attention at its batch of 64 to tfjs, and tiny’s to our kernels', () => {
    const attention = (B: number, T: number, D: number) => B * T * 3 * D; // the largest program: dqkv
    const m = MODEL_PRESETS.medium;
    expect(webGpuKernelsFit(attention(64, 77, m.dModel))).toBe(false);
    expect(webGpuKernelsFit(attention(20, 77, MODEL_PRESETS.tiny.dModel))).toBe(true);
  });
});
