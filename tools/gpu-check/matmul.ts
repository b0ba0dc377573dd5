/**
 * The GPU check's matMul rate (tools/gpu-check/README.md "matmul.json"): tf.matMul of n×n fp32 operands on the
 * webgpu backend, for each --sizes n. Per size: the pipelined rate (matMuls queued back to back, the queue drained by
 * one awaited 1-element read, as a training step uses the GPU), one matMul with its whole result read back by
 * `await data()` (a synchronous read is impossible on tfjs-webgpu in Node), and that result checked at 64 entries
 * against a float64 reference. A size that fails (e.g. past the adapter's storage-buffer limit) is recorded and the
 * next one still runs.
 *
 *   node matmul.mjs --sizes 2048,4096,8192 [--seconds 2] --out matmul.json
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '@aft/aft-core';
import { checkMatMul, seededMatrix } from './check';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '2048,4096,8192' },
    /** Timed matMuls per size run for about this long (at least 3, at most 200). */
    seconds: { type: 'string', default: '2' },
    out: { type: 'string' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const target = Number(values.seconds);
if (sizes.some((n) => !Number.isInteger(n) || n < 1) || !(target > 0)) {
  console.error('matmul: --sizes must be positive integers (2048,4096) and --seconds a positive number');
  process.exit(2);
}

const backend = await initBackend(process.env['AFT_BACKEND'] ?? 'webgpu');
const results: Record<string, unknown>[] = [];
for (const n of sizes) {
  const flops = 2 * n ** 3;
  const gflops = (ms: number) => Number((flops / ms / 1e6).toFixed(1));
  let a: tf.Tensor2D | null = null;
  let b: tf.Tensor2D | null = null;
  try {
    const [ha, hb] = [seededMatrix(n, n, 1), seededMatrix(n, n, 2)];
    a = tf.tensor2d(ha, [n, n]);
    b = tf.tensor2d(hb, [n, n]);
    const drain = async (t: tf.Tensor) => {
      const one = tf.slice(t, [0, 0], [1, 1]);
      await one.data();
      one.dispose();
    };
    // warm-up: uploads the operands and compiles the kernel
    const t0 = performance.now();
    let c = tf.matMul(a, b);
    await drain(c);
    const firstMs = performance.now() - t0;
    c.dispose();
    // one more alone gives the iteration count for ~`target` seconds
    let t = performance.now();
    c = tf.matMul(a, b);
    await drain(c);
    c.dispose();
    const oneMs = performance.now() - t;
    const iters = Math.min(200, Math.max(3, Math.round((target * 1000) / Math.max(oneMs, 1e-3))));
    t = performance.now();
    for (let i = 0; i < iters; i++) {
      const next = tf.matMul(a, b);
      if (i > 0) c.dispose();
      c = next;
    }
    await drain(c);
    const pipelinedMs = (performance.now() - t) / iters;
    c.dispose();
    // one matMul and its n² results read back
    t = performance.now();
    c = tf.matMul(a, b);
    const host = (await c.data()) as Float32Array;
    const withReadMs = performance.now() - t;
    c.dispose();
    results.push({
      n,
      iterations: iters,
      /** Queued back to back, the queue drained once: the rate a training step's matMuls see. */
      gflops: gflops(pipelinedMs),
      msPerMatMul: Number(pipelinedMs.toFixed(3)),
      /** One matMul and `await data()` of its whole result (n² floats back to the host). */
      gflopsWithRead: gflops(withReadMs),
      msWithRead: Number(withReadMs.toFixed(2)),
      /** The first call: operand upload and shader compilation. */
      firstCallMs: Number(firstMs.toFixed(1)),
      check: checkMatMul(ha, hb, host, n, n, n),
    });
  } catch (e) {
    results.push({ n, error: (e as Error).message.split('\n')[0] });
  } finally {
    a?.dispose();
    b?.dispose();
  }
  process.stderr.write(`matmul ${n}: ${JSON.stringify(results[results.length - 1])}\n`);
}

const ok = results.every((r) => !r['error'] && (r['check'] as { ok: boolean }).ok);
const json = `${JSON.stringify({ bench: 'matmul', backend: backend.name, adapter: backend.adapter ?? null, ok, results }, null, 2)}\n`;
if (values.out) writeFileSync(values.out, json);
else process.stdout.write(json);
process.exit(ok ? 0 : 1);
