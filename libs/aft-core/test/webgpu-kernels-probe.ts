/**
 * One backend's results for webgpu-kernels.int.test.ts, in a process of its own (a tfjs backend is process-global):
 * `tsx webgpu-kernels-probe.ts <webgpu|wasm> <out.json>`. On the same seeded inputs: our attention kernels (forward:
 * y and P; backward: dqkv) and AdamW kernel as the active backend runs them (WGSL on webgpu, kernels/webgpu; SIMD
 * wasm on wasm), and the tfjs composite the GPT uses without them (split, head transposes, scaled masked softmax,
 * products, merge; its gradient by tf.grad). Reads are asynchronous only (tfjs-webgpu cannot read synchronously in
 * Node).
 */
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { initBackend, installWebGpuKernels, Rng } from '../src';
import { adamwKernel, attentionGradKernel, attentionKernel, type AdamWAttrs } from '../src/kernels/wasm-kernels';

const [backendName, out] = process.argv.slice(2);
if (!backendName || !out) throw new Error('usage: webgpu-kernels-probe.ts <webgpu|wasm> <out.json>');
const backend = await initBackend(backendName);
const kernels = backend.name === 'webgpu' ? installWebGpuKernels() : [backend.kernels ?? ''];

/** Attention shapes: odd T and batches, head widths of tiny (16), small (32) and medium (64), and one of 8. */
const CASES = [
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

function composite(qkv: tf.Tensor2D, c: (typeof CASES)[number], scale: number) {
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

const attention = [];
for (const [n, c] of CASES.entries()) {
  const { B, H, T, hd } = c;
  const D = H * hd;
  const scale = 1 / Math.sqrt(hd);
  const qkv = tf.tensor2d(normals(100 + n, B * T * 3 * D, 1), [B * T, 3 * D]);
  const dy = tf.tensor2d(normals(200 + n, B * T * D, 1), [B * T, D]);
  const attrs = { batch: B, heads: H, scale };
  const [y, p] = attentionKernel(qkv, attrs);
  const dqkv = attentionGradKernel(qkv, p, dy, attrs);
  const ref = composite(qkv, c, scale);
  const refGrad = tf.grad((x: tf.Tensor) => composite(x as tf.Tensor2D, c, scale).y)(qkv, dy);
  attention.push({
    ...c,
    kernel: { y: await read(y), p: await read(p), dqkv: await read(dqkv) },
    composite: { y: await read(ref.y), p: await read(ref.p), dqkv: await read(refGrad) },
  });
  tf.dispose([qkv, dy, y, p, dqkv, ref.y, ref.p, refGrad]);
}

const n = ADAMW_SIZE;
const [p, g, m] = [1, 2, 3].map((s) => tf.tensor1d(normals(300 + s, n, 0.5)));
const v = tf.abs(tf.tensor1d(normals(304, n, 0.1)));
const outs = adamwKernel(p!, g!, m!, v, ADAMW_ATTRS);
const adamw = {
  attrs: ADAMW_ATTRS,
  inputs: { p: await read(p!), g: await read(g!), m: await read(m!), v: await read(v) },
  out: { p: await read(outs[0]!), m: await read(outs[1]!), v: await read(outs[2]!) },
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

writeFileSync(out, JSON.stringify({ backend: backend.name, kernels, attention, adamw, refused }));
