/** Seeded operands and a float64 reference for the GPU check's matMuls (probe.ts, matmul.ts). */

/** A rows×cols matrix of uniform values in [-1, 1) from a seeded mulberry32 stream: the same on every machine. */
export function seededMatrix(rows: number, cols: number, seed: number): Float32Array {
  const out = new Float32Array(rows * cols);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/**
 * C = A·B (A m×k, B k×n) checked at up to `samples` entries (every entry when there are fewer) against a float64
 * dot product. The error is relative to Σ|a·b| of the entry, the scale fp32 rounding works at: a sum that cancels
 * to near zero is not held to a tighter bound than its terms allow. fp32 accumulation over k terms stays near
 * 1e-6 of that scale; 1e-4 catches a wrong result (a missed tile, garbage memory) and nothing else.
 */
export function checkMatMul(
  a: Float32Array,
  b: Float32Array,
  c: Float32Array,
  m: number,
  k: number,
  n: number,
  samples = 64,
): { entries: number; maxRelError: number; ok: boolean } {
  const all = m * n <= samples;
  const count = all ? m * n : samples;
  let worst = 0;
  for (let s = 0; s < count; s++) {
    // spread the samples over rows and columns, corners included
    const idx = all ? s : Math.floor((s * (m * n - 1)) / (count - 1));
    const [i, j] = [Math.floor(idx / n), idx % n];
    let ref = 0;
    let scale = 0;
    for (let p = 0; p < k; p++) {
      const x = a[i * k + p]! * b[p * n + j]!;
      ref += x;
      scale += Math.abs(x);
    }
    const err = Math.abs(c[idx]! - ref) / Math.max(scale, 1e-30);
    worst = Number.isNaN(err) ? Infinity : Math.max(worst, err); // NaN in C is as wrong as it gets
  }
  return { entries: count, maxRelError: Number(worst.toPrecision(3)), ok: worst < 1e-4 };
}
