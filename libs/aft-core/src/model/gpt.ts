/**
 * A GPT (Radford et al. 2019; nanoGPT's layout): token + position embeddings, pre-LayerNorm blocks with causal
 * multi-head attention and a GELU MLP, a final LayerNorm, and an output projection tied to the token embedding.
 * Shapes: B batch, T time, D model width, H heads, hd = D/H, V vocabulary.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../rng';
import { validateModelConfig, type GPTConfig } from './config';
import { usingWasmKernels } from '../kernels/wasm-kernels';
import { usingWebGpuKernels, webGpuAttentionFits } from '../kernels/webgpu/webgpu-kernels';
import { affine, causalAttention, gelu, layerNorm, linear, linearT, matMulT, oneHotF, selfAttention } from './ops';

interface ParamSpec {
  name: string;
  shape: number[];
  init: 'normal' | 'normal-proj' | 'zeros' | 'ones';
}

function paramSpecs(c: GPTConfig): ParamSpec[] {
  const D = c.dModel;
  const specs: ParamSpec[] = [
    { name: 'wte', shape: [c.vocabSize, D], init: 'normal' },
    { name: 'wpe', shape: [c.blockSize, D], init: 'normal' },
  ];
  for (let l = 0; l < c.nLayer; l++) {
    specs.push(
      { name: `h${l}.ln1.g`, shape: [D], init: 'ones' },
      { name: `h${l}.ln1.b`, shape: [D], init: 'zeros' },
      { name: `h${l}.attn.wqkv`, shape: [D, 3 * D], init: 'normal' },
      { name: `h${l}.attn.bqkv`, shape: [3 * D], init: 'zeros' },
      { name: `h${l}.attn.wo`, shape: [D, D], init: 'normal-proj' },
      { name: `h${l}.attn.bo`, shape: [D], init: 'zeros' },
      { name: `h${l}.ln2.g`, shape: [D], init: 'ones' },
      { name: `h${l}.ln2.b`, shape: [D], init: 'zeros' },
      { name: `h${l}.mlp.w1`, shape: [D, 4 * D], init: 'normal' },
      { name: `h${l}.mlp.b1`, shape: [4 * D], init: 'zeros' },
      { name: `h${l}.mlp.w2`, shape: [4 * D, D], init: 'normal-proj' },
      { name: `h${l}.mlp.b2`, shape: [D], init: 'zeros' },
    );
  }
  specs.push({ name: 'lnf.g', shape: [D], init: 'ones' }, { name: 'lnf.b', shape: [D], init: 'zeros' });
  return specs;
}

/** Key/value cache for incremental decoding: per layer, keys and values [B·H, t, hd]. */
export interface KVCache {
  k: tf.Tensor3D[];
  v: tf.Tensor3D[];
  length: number;
}

export class GPT {
  readonly config: GPTConfig;
  readonly names: string[];
  readonly params: Map<string, tf.Variable>;
  private static instances = 0;

  constructor(config: GPTConfig, rng: Rng) {
    this.config = validateModelConfig(config);
    const specs = paramSpecs(config);
    this.names = specs.map((s) => s.name);
    this.params = new Map();
    const projStd = config.initStd / Math.sqrt(2 * config.nLayer);
    const prefix = `gpt${GPT.instances++}`; // variable names are global to tfjs
    for (const s of specs) {
      const n = s.shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      if (s.init === 'ones') data.fill(1);
      else if (s.init !== 'zeros') {
        const std = s.init === 'normal-proj' ? projStd : config.initStd;
        for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
      }
      const init = tf.tensor(data, s.shape);
      this.params.set(s.name, tf.variable(init, true, `${prefix}/${s.name}`));
      init.dispose(); // the variable holds its own reference
    }
  }

  p<R extends tf.Rank = tf.Rank>(name: string): tf.Tensor<R> {
    const v = this.params.get(name);
    if (!v) throw new Error(`no parameter ${name}`);
    return v as unknown as tf.Tensor<R>;
  }

  get numParams(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /** Input embedding of tokens [B, T] starting at position `pos0` → [B·T, D]. */
  private embed(idx: tf.Tensor2D, pos0: number): tf.Tensor2D {
    const [B, T] = idx.shape;
    const { vocabSize: V, dModel: D } = this.config;
    if (pos0 + T > this.config.blockSize)
      throw new Error(`sequence of ${pos0 + T} exceeds blockSize ${this.config.blockSize}`);
    const oneHot = oneHotF(tf.reshape(idx, [-1]) as tf.Tensor1D, V); // [B·T, V]
    const tok = linear(oneHot, this.p('wte')); // [B·T, D]
    const pos = tf.slice(this.p<tf.Rank.R2>('wpe'), [pos0, 0], [T, D]); // [T, D]
    return tf.reshape(tf.add(tf.reshape(tok, [B, T, D]), pos), [B * T, D]);
  }

  private heads(t: tf.Tensor2D, B: number, T: number): tf.Tensor3D {
    const { nHead: H, dModel: D } = this.config;
    const hd = D / H;
    return tf.reshape(tf.transpose(tf.reshape(t, [B, T, H, hd]), [0, 2, 1, 3]), [B * H, T, hd]); // [B·H, T, hd]
  }

  private merge(y: tf.Tensor3D, B: number, T: number): tf.Tensor2D {
    const { nHead: H, dModel: D } = this.config;
    return tf.reshape(tf.transpose(tf.reshape(y, [B, H, T, D / H]), [0, 2, 1, 3]), [B * T, D]); // [B·T, D]
  }

  private mlp(x: tf.Tensor2D, l: number): tf.Tensor2D {
    const h = layerNorm(x, this.p(`h${l}.ln2.g`), this.p(`h${l}.ln2.b`));
    const u = gelu(affine(h, this.p(`h${l}.mlp.w1`), this.p(`h${l}.mlp.b1`))) as tf.Tensor2D; // [N, 4D]
    return affine(u, this.p(`h${l}.mlp.w2`), this.p(`h${l}.mlp.b2`)); // [N, D]
  }

  /**
   * Logits [B·T, V] for tokens [B, T] (int32). With `cache`, also fills it with every position's keys and values
   * (for decoding after a prompt); then no gradient is needed.
   */
  forward(idx: tf.Tensor2D, cache?: KVCache): tf.Tensor2D {
    const [B, T] = idx.shape;
    const { nLayer, nHead, dModel } = this.config;
    const scale = 1 / Math.sqrt(dModel / nHead);
    let x = this.embed(idx, 0); // [B·T, D]
    for (let l = 0; l < nLayer; l++) {
      const h = layerNorm(x, this.p(`h${l}.ln1.g`), this.p(`h${l}.ln1.b`));
      const qkv = affine(h, this.p(`h${l}.attn.wqkv`), this.p(`h${l}.attn.bqkv`)); // [B·T, 3D]
      let y: tf.Tensor2D; // [B·T, D], heads merged
      if (!cache && (usingWasmKernels() || (usingWebGpuKernels() && webGpuAttentionFits(B, nHead, T, dModel)))) {
        y = selfAttention(qkv, B, nHead, scale); // heads read and written in place
      } else {
        const [q, k, v] = tf.split(qkv, 3, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        const kh = this.heads(k, B, T); // [B·H, T, hd]
        const vh = this.heads(v, B, T); // [B·H, T, hd]
        if (cache) {
          cache.k[l] = tf.keep(kh);
          cache.v[l] = tf.keep(vh);
        }
        y = this.merge(causalAttention(this.heads(q, B, T), kh, vh, scale), B, T);
      }
      x = tf.add(x, affine(y, this.p(`h${l}.attn.wo`), this.p(`h${l}.attn.bo`)));
      x = tf.add(x, this.mlp(x, l));
    }
    if (cache) cache.length = T;
    x = layerNorm(x, this.p('lnf.g'), this.p('lnf.b'));
    return linearT(x, this.p('wte')); // [B·T, V]
  }

  /** One decoding step: next-token logits [B, V] for tokens [B] at position cache.length; extends the cache. */
  decodeStep(tokens: tf.Tensor1D, cache: KVCache): tf.Tensor2D {
    const B = tokens.shape[0];
    const { nLayer, nHead, dModel } = this.config;
    const scale = 1 / Math.sqrt(dModel / nHead);
    let x = this.embed(tf.reshape(tokens, [B, 1]), cache.length); // [B, D]
    for (let l = 0; l < nLayer; l++) {
      const h = layerNorm(x, this.p(`h${l}.ln1.g`), this.p(`h${l}.ln1.b`));
      const qkv = affine(h, this.p(`h${l}.attn.wqkv`), this.p(`h${l}.attn.bqkv`)); // [B, 3D]
      const [q, k, v] = tf.split(qkv, 3, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
      const kh = tf.concat([cache.k[l]!, this.heads(k, B, 1)], 1) as tf.Tensor3D; // [B·H, t+1, hd]
      const vh = tf.concat([cache.v[l]!, this.heads(v, B, 1)], 1) as tf.Tensor3D; // [B·H, t+1, hd]
      cache.k[l]!.dispose();
      cache.v[l]!.dispose();
      cache.k[l] = tf.keep(kh);
      cache.v[l] = tf.keep(vh);
      const att = tf.mul(matMulT(this.heads(q, B, 1), kh, false, true), scale); // [B·H, 1, t+1]
      const y = matMulT(tf.softmax(att) as tf.Tensor3D, vh, false, false); // [B·H, 1, hd]
      x = tf.add(x, affine(this.merge(y, B, 1), this.p(`h${l}.attn.wo`), this.p(`h${l}.attn.bo`)));
      x = tf.add(x, this.mlp(x, l));
    }
    cache.length += 1;
    x = layerNorm(x, this.p('lnf.g'), this.p('lnf.b'));
    return linearT(x, this.p('wte')); // [B, V]
  }

  /** All parameters as named Float32Arrays (for checkpoints). */
  async getWeights(): Promise<Record<string, Float32Array>> {
    const out: Record<string, Float32Array> = {};
    for (const [n, v] of this.params) out[n] = (await v.data()) as Float32Array;
    return out;
  }

  setWeights(w: Record<string, Float32Array>): void {
    for (const [n, v] of this.params) {
      const data = w[n];
      if (!data || data.length !== v.size) throw new Error(`checkpoint has no weights of size ${v.size} for ${n}`);
      tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
    }
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
  }
}

export function disposeCache(cache: KVCache): void {
  for (const t of [...cache.k, ...cache.v]) t?.dispose();
  cache.k = [];
  cache.v = [];
}
