/**
 * AdamW (Loshchilov & Hutter 2019) with decoupled weight decay on matrices only (not gains, biases or position
 * embeddings), global-norm gradient clipping, and a linear warm-up + cosine learning-rate schedule.
 * Its state — moments and step count — is plain data, saved in checkpoints for an exact resume.
 */
import * as tf from '@tensorflow/tfjs';
import { adamwKernel, usingWasmKernels } from '../kernels/wasm-kernels';
import { usingWebGpuKernels, webGpuKernelsFit } from '../kernels/webgpu/webgpu-kernels';

export interface OptimConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient norm to this (0 = no clipping). */
  clipNorm: number;
  warmupSteps: number;
  /** The schedule's horizon; the learning rate decays to lr · minLrRatio by then. */
  totalSteps: number;
  minLrRatio: number;
}

export const OPTIM_DEFAULTS: OptimConfig = {
  lr: 3e-3,
  beta1: 0.9,
  beta2: 0.98,
  eps: 1e-8,
  weightDecay: 0.01,
  clipNorm: 1,
  warmupSteps: 50,
  totalSteps: 1000,
  minLrRatio: 0.1,
};

export function lrAt(step: number, c: OptimConfig): number {
  if (step < c.warmupSteps) return (c.lr * (step + 1)) / c.warmupSteps;
  const progress = Math.min(1, (step - c.warmupSteps) / Math.max(1, c.totalSteps - c.warmupSteps));
  return c.lr * (c.minLrRatio + (1 - c.minLrRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** A non-trainable variable initialised from `t`; `t` itself is released (a variable keeps its own reference). */
function ownVariable(t: tf.Tensor): tf.Variable {
  const v = tf.variable(t, false);
  t.dispose();
  return v;
}

export interface AdamWState {
  t: number;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}

export class AdamW {
  t = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(
    readonly config: OptimConfig,
    private readonly params: Map<string, tf.Variable>,
    private readonly decay: (name: string) => boolean = (name) => /(^wte|\.wqkv|\.wo|\.w1|\.w2)$/.test(name),
  ) {
    for (const [n, p] of params) {
      this.m.set(n, ownVariable(tf.zerosLike(p)));
      this.v.set(n, ownVariable(tf.zerosLike(p)));
    }
  }

  /**
   * Applies one update from `grads` (named like the parameters) at learning rate `lr`; resolves to the pre-clip
   * norm. Async: the norm is read with `data()` — a synchronous read is impossible on tfjs-webgpu in Node.
   */
  async apply(grads: Record<string, tf.Tensor>, lr: number): Promise<number> {
    const { beta1, beta2, eps, weightDecay, clipNorm } = this.config;
    this.t += 1;
    const t = this.t;
    const norm = tf.tidy(() => tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g))))));
    const gradNorm = (await norm.data())[0]!;
    norm.dispose();
    const scale = clipNorm > 0 && gradNorm > clipNorm ? clipNorm / (gradNorm + 1e-6) : 1;
    const bc1 = 1 - beta1 ** t;
    const bc2 = 1 - beta2 ** t;
    const wasmFused = usingWasmKernels();
    const gpuFused = usingWebGpuKernels();
    tf.tidy(() => {
      for (const [n, p] of this.params) {
        const raw = grads[n];
        if (!raw) continue;
        if (wasmFused || (gpuFused && webGpuKernelsFit(p.size))) {
          const decay = this.decay(n) && weightDecay > 0 ? 1 - lr * weightDecay : 1;
          const attrs = { gradScale: scale, beta1, beta2, bc1, bc2, eps, lr, decay };
          const [p2, m2, v2] = adamwKernel(p, raw, this.m.get(n)!, this.v.get(n)!, attrs);
          p.assign(p2!);
          this.m.get(n)!.assign(m2!);
          this.v.get(n)!.assign(v2!);
          continue;
        }
        const g = scale === 1 ? raw : tf.mul(raw, scale);
        const m = this.m.get(n)!;
        const v = this.v.get(n)!;
        m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
        v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
        const update = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), eps));
        const decayed = this.decay(n) && weightDecay > 0 ? tf.mul(p, 1 - lr * weightDecay) : p;
        p.assign(tf.sub(decayed, tf.mul(update, lr)));
      }
    });
    return gradNorm;
  }

  async getState(): Promise<AdamWState> {
    const m: Record<string, Float32Array> = {};
    const v: Record<string, Float32Array> = {};
    for (const [n, x] of this.m) m[n] = (await x.data()) as Float32Array;
    for (const [n, x] of this.v) v[n] = (await x.data()) as Float32Array;
    return { t: this.t, m, v };
  }

  setState(s: AdamWState): void {
    this.t = s.t;
    tf.tidy(() => {
      for (const [n, x] of this.m) x.assign(tf.tensor(s.m[n]!, x.shape));
      for (const [n, x] of this.v) x.assign(tf.tensor(s.v[n]!, x.shape));
    });
  }

  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
  }
}
