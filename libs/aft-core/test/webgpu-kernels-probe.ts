/**
 * One backend's results for webgpu-kernels.int.test.ts, in a process of its own (a tfjs backend is process-global):
 * `tsx webgpu-kernels-probe.ts <webgpu|wasm> <out.json>`. On the same seeded inputs: our attention kernels (forward:
 * y and P; backward: dqkv) and AdamW kernel as the active backend runs them (WGSL on webgpu, kernels/webgpu; SIMD
 * wasm on wasm), and the tfjs composite the GPT uses without them (split, head transposes, scaled masked softmax,
 * products, merge; its gradient by tf.grad). On webgpu also both past the old 1-D dispatch limit (`large`). Reads
 * are asynchronous only (tfjs-webgpu cannot read synchronously in Node).
 */
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend, installWebGpuKernels, Rng } from '../src';
import { adamwKernel, attentionGradKernel, attentionKernel, type AdamWAttrs } from '../src/kernels/wasm-kernels';
import { webGpuAttentionFits, webGpuKernelsFit, webGpuKernelsMaxElements } from '../src/kernels/webgpu/webgpu-kernels';
import { adamwFloat64 } from './adamw-reference';

const [backendName, out] = process.argv.slice(2);
if (!backendName || !out) throw new Error('usage: webgpu-kernels-probe.ts <webgpu|wasm> <out.json>');
const backend = await initBackend(backendName);
const kernels = backend.name === 'webgpu' ? installWebGpuKernels() : [backend.kernels ?? ''];

type Case = { B: number; H: number; T: number; hd: number };

/** Attention shapes: odd T and batches, head widths of tiny (16), small (32) and medium (64), and one of 8. */
const CASES: Case[] = [
  { B: 2, H: 4, T: 13, hd: 16 },
  { B: 3, H: 2, T: 37, hd: 8 },
  { B: 2, H: 6, T: 29, hd: 32 },
  { B: 1, H: 2, T: 70, hd: 64 },
];
const ADAMW_SIZE = 1037; // not a multiple of the workgroup (64) or of 4
const ADAMW_ATTRS: AdamWAttrs = {
  gradScale: 0.8,
  beta1: 0.9,
  beta2: 0.98,
  bc1: 1 - 0.9 ** 3,
  bc2: 1 - 0.98 ** 3,
  eps: 1e-8,
  lr: 3e-3,
  decay: 1 - 3e-3 * 0.01,
};

function normals(seed: number, n: number, std: number): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.normal() * std);
}

/** Seeded uniform values of variance std², for the large cases: at millions of elements normals take seconds. */
function uniforms(seed: number, n: number, std: number): Float32Array {
  let x = (seed * 2654435761) >>> 0 || 1;
  const k = (std * Math.sqrt(3)) / 2 ** 31;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13; // xorshift32
    x ^= x >>> 17;
    x ^= x << 5;
    a[i] = (x | 0) * k;
  }
  return a;
}
type Fill = typeof normals;

function composite(qkv: tf.Tensor2D, c: Case, scale: number) {
  const { B, H, T, hd } = c;
  const [q, k, v] = tf.split(qkv, 3, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
  const heads = (t: tf.Tensor2D) =>
    tf.reshape(tf.transpose(tf.reshape(t, [B, T, H, hd]), [0, 2, 1, 3]), [B * H, T, hd]) as tf.Tensor3D;
  const mask = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = -1e9;
  const s = tf.add(tf.mul(tf.matMul(heads(q), heads(k), false, true), scale), tf.tensor2d(mask, [T, T]));
  const p = tf.softmax(s) as tf.Tensor3D;
  const y = tf.reshape(tf.transpose(tf.reshape(tf.matMul(p, heads(v)), [B, H, T, hd]), [0, 2, 1, 3]), [B * T, H * hd]);
  return { y: y as tf.Tensor2D, p };
}

const read = async (t: tf.Tensor) => Array.from(await t.data());

/** Our kernels and the composite (its gradient by tf.grad) on seeded qkv and dy of shape `c`. */
function attentionBoth(c: Case, seed: number, fill: Fill = normals) {
  const { B, H, T, hd } = c;
  const D = H * hd;
  const scale = 1 / Math.sqrt(hd);
  const qkv = tf.tensor2d(fill(100 + seed, B * T * 3 * D, 1), [B * T, 3 * D]);
  const dy = tf.tensor2d(fill(200 + seed, B * T * D, 1), [B * T, D]);
  const attrs = { batch: B, heads: H, scale };
  const [y, p] = attentionKernel(qkv, attrs);
  const dqkv = attentionGradKernel(qkv, p, dy, attrs);
  const ref = composite(qkv, c, scale);
  const refGrad = tf.grad((x: tf.Tensor) => composite(x as tf.Tensor2D, c, scale).y)(qkv, dy);
  tf.dispose([qkv, dy]);
  return { kernel: { y, p, dqkv }, composite: { y: ref.y, p: ref.p, dqkv: refGrad } };
}

const attention = [];
for (const [n, c] of CASES.entries()) {
  const { kernel, composite } = attentionBoth(c, n);
  const all = [kernel.y, kernel.p, kernel.dqkv, composite.y, composite.p, composite.dqkv];
  const [ky, kp, kd, ry, rp, rd] = await Promise.all(all.map(read));
  attention.push({ ...c, kernel: { y: ky, p: kp, dqkv: kd }, composite: { y: ry, p: rp, dqkv: rd } });
  tf.dispose(all);
}

/** Seeded p, g, m, v of n elements, and our kernel's update of them [p', m', v']. */
function adamwRun(n: number, fill: Fill = normals) {
  const [p, g, m] = [1, 2, 3].map((s) => tf.tensor1d(fill(300 + s, n, 0.5)));
  const v = tf.abs(tf.tensor1d(fill(304, n, 0.1)));
  return { inputs: { p: p!, g: g!, m: m!, v }, out: adamwKernel(p!, g!, m!, v, ADAMW_ATTRS) };
}

const small = adamwRun(ADAMW_SIZE);
const adamw = {
  attrs: ADAMW_ATTRS,
  inputs: Object.fromEntries(await Promise.all(Object.entries(small.inputs).map(async ([k, t]) => [k, await read(t)]))),
  out: { p: await read(small.out[0]!), m: await read(small.out[1]!), v: await read(small.out[2]!) },
};

// a wrong P shape is refused, naming the kernel (webgpu: our check; wasm reads whatever it is given)
let refused = '';
if (backend.name === 'webgpu') {
  const qkv = tf.zeros([2 * 5, 3 * 8]) as tf.Tensor2D;
  try {
    attentionGradKernel(qkv, tf.zeros([4, 5, 4]) as tf.Tensor3D, tf.zeros([10, 8]) as tf.Tensor2D, {
      batch: 2,
      heads: 2,
      scale: 0.5,
    });
  } catch (e) {
    refused = (e as Error).message;
  }
}

/**
 * Past the old 1-D dispatch limit of 65,535 workgroups of 64 (4,194,240 invocations), webgpu only: AdamW on more
 * elements than that, against the update in float64, and attention whose dqkv program has B·T·3D = 4,202,496
 * invocations, against the composite. Arrays this large are too much for JSON: reduced here to the largest
 * difference and magnitude of each output.
 */
const LARGE_ADAMW = 65_535 * 64 + 1037;
const LARGE_ATTENTION: Case = { B: 342, H: 64, T: 8, hd: 8 };
type Compared = Record<string, { diff: number; max: number }>;
function compare(got: ArrayLike<number>, ref: ArrayLike<number>) {
  if (got.length !== ref.length) throw new Error(`${got.length} elements against ${ref.length}`);
  let diff = 0;
  let max = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(got[i]! - ref[i]!));
    max = Math.max(max, Math.abs(ref[i]!));
  }
  return { diff, max };
}
let large = null;
if (backend.name === 'webgpu') {
  const started = performance.now();
  const a = adamwRun(LARGE_ADAMW, uniforms);
  const [p, g, m, v, p2, m2, v2] = await Promise.all([...Object.values(a.inputs), ...a.out].map((t) => t.data()));
  const ref = adamwFloat64(ADAMW_ATTRS, { p: p!, g: g!, m: m!, v: v! });
  const adamwDiffs: Compared = { p: compare(p2!, ref.p), m: compare(m2!, ref.m), v: compare(v2!, ref.v) };
  tf.dispose([...Object.values(a.inputs), ...a.out]);

  const { B, H, T, hd } = LARGE_ATTENTION;
  const at = attentionBoth(LARGE_ATTENTION, 9, uniforms);
  const attentionDiffs: Compared = {};
  for (const k of ['y', 'p', 'dqkv'] as const) {
    const [got, want] = await Promise.all([at.kernel[k].data(), at.composite[k].data()]);
    attentionDiffs[k] = compare(got, want);
  }
  tf.dispose([...Object.values(at.kernel), ...Object.values(at.composite)]);
  large = {
    maxElements: webGpuKernelsMaxElements(),
    adamw: { n: LARGE_ADAMW, fits: webGpuKernelsFit(LARGE_ADAMW), diffs: adamwDiffs },
    attention: {
      ...LARGE_ATTENTION,
      invocations: B * T * 3 * H * hd,
      fits: webGpuAttentionFits(B, H, T, H * hd),
      diffs: attentionDiffs,
    },
    seconds: (performance.now() - started) / 1000,
  };
}

writeFileSync(out, JSON.stringify({ backend: backend.name, kernels, attention, adamw, refused, large }));
