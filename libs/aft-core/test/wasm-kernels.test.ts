import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, batchMatMul, initBackend, OPTIM_DEFAULTS, Rng, setWasmKernelsEnabled, usingWasmKernels } from '../src';
import { tokenLogProbsKernel } from '../src/kernels/wasm-kernels';
import { affine, causalAttention, gelu, layerNorm, selfAttention } from '../src/model/ops';

beforeAll(async () => {
  await initBackend('wasm');
});

/** op(A)·op(B) (+ bias) in float64, from plain arrays: the reference the SIMD kernel must match. */
function reference(
  a: Float32Array,
  b: Float32Array,
  [batch, M, N, K]: number[],
  ta: boolean,
  tb: boolean,
  bias?: Float32Array,
  broadcastA = false,
): Float64Array {
  const out = new Float64Array(batch! * M! * N!);
  for (let n = 0; n < batch!; n++) {
    const ao = broadcastA ? 0 : n * M! * K!;
    const bo = n * K! * N!;
    for (let i = 0; i < M!; i++) {
      for (let j = 0; j < N!; j++) {
        let s = bias ? bias[j]! : 0;
        for (let k = 0; k < K!; k++) {
          const x = ta ? a[ao + k * M! + i]! : a[ao + i * K! + k]!;
          const y = tb ? b[bo + j * K! + k]! : b[bo + k * N! + j]!;
          s += x * y;
        }
        out[(n * M! + i) * N! + j] = s;
      }
    }
  }
  return out;
}

function maxDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  expect(x.length).toBe(y.length);
  let d = 0;
  for (let i = 0; i < x.length; i++) d = Math.max(d, Math.abs(x[i]! - y[i]!));
  return d;
}

/** Runs f with our kernels on and off; returns both results as arrays. */
function onAndOff(f: () => tf.Tensor[]): [Float32Array[], Float32Array[]] {
  const run = (on: boolean) => {
    setWasmKernelsEnabled(on);
    try {
      return tf.tidy(f).map((t) => {
        const d = t.dataSync() as Float32Array;
        t.dispose();
        return d;
      });
    } finally {
      setWasmKernelsEnabled(true);
    }
  };
  return [run(true), run(false)];
}

describe('our wasm kernels', () => {
  it('are installed on the wasm backend', () => {
    expect(usingWasmKernels()).toBe(true);
  });

  it('batched matMul matches a float64 reference for ragged shapes, both transposes, bias and broadcasting', () => {
    const rng = new Rng(5);
    const shapes = [
      [1, 1, 1, 1],
      [2, 3, 5, 7],
      [3, 4, 8, 16],
      [2, 13, 19, 9],
      [1, 65, 33, 130],
      [5, 33, 17, 40],
    ];
    let checked = 0;
    for (const [batch, M, N, K] of shapes) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          for (const withBias of [false, true]) {
            const a = Float32Array.from({ length: batch! * M! * K! }, () => rng.normal());
            const b = Float32Array.from({ length: batch! * K! * N! }, () => rng.normal());
            const bias = withBias ? Float32Array.from({ length: N! }, () => rng.normal()) : undefined;
            const c = tf.tidy(() =>
              batchMatMul(
                tf.tensor3d(a, ta ? [batch!, K!, M!] : [batch!, M!, K!]),
                tf.tensor3d(b, tb ? [batch!, N!, K!] : [batch!, K!, N!]),
                ta,
                tb,
                bias && tf.tensor1d(bias),
              ),
            );
            expect(c.shape).toEqual([batch, M, N]);
            const want = reference(a, b, [batch!, M!, N!, K!], ta, tb, bias);
            expect(maxDiff(c.dataSync(), want)).toBeLessThan(1e-4 * Math.sqrt(K!));
            c.dispose();
            checked++;
          }
        }
      }
    }
    expect(checked).toBe(shapes.length * 8);
  });

  it('broadcasts a batch of one against many', () => {
    const rng = new Rng(6);
    const a = Float32Array.from({ length: 5 * 6 }, () => rng.normal());
    const b = Float32Array.from({ length: 3 * 6 * 7 }, () => rng.normal());
    const c = tf.tidy(() => batchMatMul(tf.tensor3d(a, [1, 5, 6]), tf.tensor3d(b, [3, 6, 7])));
    expect(c.shape).toEqual([3, 5, 7]);
    expect(maxDiff(c.dataSync(), reference(a, b, [3, 5, 7, 6], false, false, undefined, true))).toBeLessThan(1e-4);
    c.dispose();
  });

  it('refuses shapes that do not multiply, naming them', () => {
    expect(() => tf.tidy(() => batchMatMul(tf.zeros([2, 3, 4]), tf.zeros([2, 5, 6])))).toThrow(
      /shapes \[2,3,4\] and \[2,5,6\] do not multiply/,
    );
  });

  it('GELU, LayerNorm, affine and causal attention agree with the tfjs composites, values and gradients', () => {
    const rng = new Rng(7);
    const t = (shape: number[], scale = 1) =>
      tf.tensor(
        Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => rng.normal() * scale),
        shape,
      );
    const x = t([37, 64], 3) as tf.Tensor2D;
    const g = t([64]) as tf.Tensor1D;
    const b = t([64]) as tf.Tensor1D;
    const w = t([64, 24]) as tf.Tensor2D;
    const bias = t([24]) as tf.Tensor1D;
    const q = t([6, 29, 8]) as tf.Tensor3D;
    const k = t([6, 29, 8]) as tf.Tensor3D;
    const v = t([6, 29, 8]) as tf.Tensor3D;
    // upstream gradients, fixed across both runs
    const [rLn, rAff, rAtt] = [t([37, 64]), t([37, 24]), t([6, 29, 8])];
    const cases: [string, () => tf.Tensor[], number][] = [
      ['gelu', () => [gelu(x), tf.grad((z: tf.Tensor) => tf.sum(tf.mul(gelu(z), tf.sin(z))))(x)], 2e-5],
      [
        'layerNorm',
        () => {
          const r = rLn;
          return [
            layerNorm(x, g, b),
            ...tf.grads((z: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) =>
              tf.sum(tf.mul(layerNorm(z as tf.Tensor2D, gg as tf.Tensor1D, bb as tf.Tensor1D), r)),
            )([x, g, b]),
          ];
        },
        2e-5,
      ],
      [
        'affine',
        () => {
          const r = rAff;
          return [
            affine(x, w, bias),
            ...tf.grads((z: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
              tf.sum(tf.mul(affine(z as tf.Tensor2D, ww as tf.Tensor2D, bb as tf.Tensor1D), r)),
            )([x, w, bias]),
          ];
        },
        1e-4,
      ],
      [
        'causalAttention',
        () => {
          const r = rAtt;
          const f = (a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) =>
            causalAttention(a as tf.Tensor3D, c as tf.Tensor3D, d as tf.Tensor3D, 0.35);
          return [
            f(q, k, v),
            ...tf.grads((a: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => tf.sum(tf.mul(f(a, c, d), r)))([q, k, v]),
          ];
        },
        1e-5,
      ],
    ];
    for (const [name, f, tol] of cases) {
      const [ours, theirs] = onAndOff(f);
      expect(ours.length, name).toBe(theirs.length);
      ours.forEach((o, i) => expect(maxDiff(o, theirs[i]!), `${name} output ${i}`).toBeLessThan(tol));
    }
    tf.dispose([x, g, b, w, bias, q, k, v, rLn, rAff, rAtt]);
  });

  it('AdamW steps (clipped, decayed and not) agree with the composite update', async () => {
    const rng = new Rng(8);
    const init = { 'h0.attn.wqkv': [13, 7], 'h0.ln1.g': [13] } as Record<string, number[]>;
    const values = Object.fromEntries(
      Object.entries(init).map(([n, shape]) => [
        n,
        Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
      ]),
    );
    const states = [];
    for (const on of [true, false]) {
      setWasmKernelsEnabled(on);
      const params = new Map(Object.entries(init).map(([n, shape]) => [n, tf.variable(tf.tensor(values[n]!, shape))]));
      const opt = new AdamW({ ...OPTIM_DEFAULTS, clipNorm: 0.5, weightDecay: 0.1 }, params);
      for (let step = 0; step < 3; step++) {
        const grads = Object.fromEntries(
          Object.entries(init).map(([n, shape]) => [n, tf.randomNormal(shape, 0, 1, 'float32', step + 1)]),
        );
        await opt.apply(grads, 0.01);
        tf.dispose(Object.values(grads));
      }
      const st = await opt.getState();
      states.push({
        p: await Promise.all([...params.values()].map((v) => v.data())),
        m: Object.values(st.m),
        v: Object.values(st.v),
      });
      opt.dispose();
      params.forEach((v) => v.dispose());
    }
    setWasmKernelsEnabled(true);
    const [ours, theirs] = states;
    for (const k of ['p', 'm', 'v'] as const) {
      ours![k].forEach((x, i) => expect(maxDiff(x, theirs![k][i]!), `${k}[${i}]`).toBeLessThan(1e-6));
    }
  });

  it('token log-probabilities match log-softmax at the target, and refuse targets outside the vocabulary', () => {
    const x = tf.mul(tf.randomNormal([37, 100], 0, 1, 'float32', 3), 4) as tf.Tensor2D;
    const targets = tf.tensor1d(
      Array.from({ length: 37 }, (_, i) => (i * 7) % 100),
      'int32',
    );
    const want = tf.tidy(() => tf.sum(tf.mul(tf.logSoftmax(x), tf.cast(tf.oneHot(targets, 100), 'float32')), 1));
    const got = tokenLogProbsKernel(x, targets);
    expect(maxDiff(got.dataSync(), want.dataSync())).toBeLessThan(2e-6);
    const bad = tf.tensor1d([...Array(36).fill(0), 100], 'int32');
    expect(() => tokenLogProbsKernel(x, bad)).toThrow(/target 100 outside 0..99/);
    tf.dispose([x, targets, want, got, bad]);
  });

  it('multi-head attention read straight from qkv equals split → heads → attention → merge, values and gradient', () => {
    const [B, T, H, hd] = [3, 21, 4, 8];
    const D = H * hd;
    const qkv = tf.randomNormal([B * T, 3 * D], 0, 1, 'float32', 4) as tf.Tensor2D;
    const r = tf.randomNormal([B * T, D], 0, 1, 'float32', 5);
    const heads = (t: tf.Tensor) =>
      tf.reshape(tf.transpose(tf.reshape(t, [B, T, H, hd]), [0, 2, 1, 3]), [B * H, T, hd]) as tf.Tensor3D;
    const viaHeads = (x: tf.Tensor) => {
      const [q, k, v] = tf.split(x, 3, 1);
      const y = causalAttention(heads(q!), heads(k!), heads(v!), 0.3);
      return tf.reshape(tf.transpose(tf.reshape(y, [B, H, T, hd]), [0, 2, 1, 3]), [B * T, D]);
    };
    // freed NaNs for the kernels' outputs and scratch to land on: masked-out blocks must never be read
    tf.dispose(Array.from({ length: 4 }, () => tf.fill([B * H * T * T], NaN)));
    const [fused, reference] = [(x: tf.Tensor) => selfAttention(x as tf.Tensor2D, B, H, 0.3), viaHeads].map((f) =>
      tf.tidy(() => [f(qkv), tf.grad((x: tf.Tensor) => tf.sum(tf.mul(f(x), r)))(qkv)].map((t) => t.dataSync())),
    );
    // the composite on tfjs's own kernels
    const [, plain] = onAndOff(() => [viaHeads(qkv), tf.grad((x: tf.Tensor) => tf.sum(tf.mul(viaHeads(x), r)))(qkv)]);
    fused!.forEach((x, i) => {
      expect(maxDiff(x, reference![i]!)).toBeLessThan(1e-6);
      expect(maxDiff(x, plain[i]!)).toBeLessThan(1e-5);
    });
    tf.dispose([qkv, r]);
  });

  it('causal attention puts exactly zero weight on future keys', () => {
    // with v = identity rows, y = P itself: row i must be 0 past column i and sum to 1
    const T = 11;
    const y = tf.tidy(() =>
      causalAttention(
        tf.randomNormal([2, T, T]),
        tf.randomNormal([2, T, T]),
        tf.eye(T).reshape([1, T, T]).tile([2, 1, 1]),
        1,
      ),
    );
    const p = y.arraySync() as number[][][];
    for (const m of p) {
      m.forEach((row, i) => {
        row.slice(i + 1).forEach((x) => expect(x).toBe(0));
        expect(row.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 5);
      });
    }
    y.dispose();
  });

  it('clones share the buffer (autodiff saves inputs without copying) and free it with the last reference', () => {
    const before = tf.memory().numDataBuffers;
    const x = tf.tensor1d([1, 2, 3, 4]);
    const y = tf.clone(x);
    const z = tf.cast(x, 'float32');
    expect(tf.memory().numDataBuffers).toBe(before + 1); // one buffer, three tensors
    expect(y.dataId).toBe(x.dataId);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4]);
    y.dispose();
    expect(Array.from(z.dataSync())).toEqual([1, 2, 3, 4]);
    z.dispose();
    expect(tf.memory().numDataBuffers).toBe(before);
    // a real cast still converts
    const i = tf.cast(tf.tensor1d([1.7, -2.2]), 'int32');
    expect(Array.from(i.dataSync())).toEqual([1, -2]);
    i.dispose();
  });
});
