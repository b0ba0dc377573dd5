/**
 * One AdamW update in float64 from float32 inputs: the reference the webgpu kernel tests hold ours to
 * (webgpu-kernels.int.test.ts at 1,037 elements, webgpu-kernels-probe.ts past the old dispatch limit).
 */
import type { AdamWAttrs } from '../src/kernels/wasm-kernels';

type Inputs = Record<'p' | 'g' | 'm' | 'v', ArrayLike<number>>;

export function adamwFloat64(a: AdamWAttrs, x: Inputs): Record<'p' | 'm' | 'v', Float64Array> {
  const n = x.p.length;
  const ref = { p: new Float64Array(n), m: new Float64Array(n), v: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    const g = x.g[i]! * a.gradScale;
    const m = x.m[i]! * a.beta1 + g * (1 - a.beta1);
    const v = x.v[i]! * a.beta2 + g * g * (1 - a.beta2);
    ref.p[i] = a.decay * x.p[i]! - a.lr * (m / a.bc1 / (Math.sqrt(v / a.bc2) + a.eps));
    ref.m[i] = m;
    ref.v[i] = v;
  }
  return ref;
}
