/**
 * What our WGSL kernels refuse (kernels/webgpu/webgpu-kernels.ts): only a tensor past the device's buffer binding
 * size — WebGPU's default 128 MiB until the kernels are installed and read the device's own. The number of
 * workgroups is no limit (tfjs reshapes the dispatch), so sizes past the old 1-D limit of 65,535 workgroups of 64
 * run ours; webgpu-kernels.int.test.ts runs two of them.
 */
import { describe, expect, it } from 'vitest';
import { MODEL_PRESETS } from '../src/model/config';
import { webGpuAttentionFits, webGpuKernelsFit, webGpuKernelsMaxElements } from '../src/kernels/webgpu/webgpu-kernels';

describe('webgpu kernel size limit', () => {
  it('is the buffer binding size (128 MiB of float32 by default), not the 1-D dispatch', () => {
    expect(webGpuKernelsMaxElements()).toBe(2 ** 25);
    expect(webGpuKernelsFit(65_535 * 64 + 1)).toBe(true);
    expect(webGpuKernelsFit(2 ** 25)).toBe(true);
    expect(webGpuKernelsFit(2 ** 25 + 1)).toBe(false);
  });

  it('counts attention by its largest tensor: P [B·H, T, T] for the medium preset at its full context', () => {
    const m = MODEL_PRESETS.medium;
    // dqkv of 7.6M elements: refused by the old 1-D limit
    expect(webGpuAttentionFits(64, m.nHead, 77, m.dModel)).toBe(true);
    // P of 64·8·256² = 2²⁵ elements is exactly 128 MiB; one more sequence is past it
    expect(webGpuAttentionFits(64, m.nHead, m.blockSize, m.dModel)).toBe(true);
    expect(webGpuAttentionFits(65, m.nHead, m.blockSize, m.dModel)).toBe(false);
    // and qkv where it is the larger: 2²⁵ / (3·2048) rows of a single head of 2048
    expect(webGpuAttentionFits(1, 1, 5461, 2048)).toBe(true);
    expect(webGpuAttentionFits(1, 1, 5462, 2048)).toBe(false);
  });
});
