/**
 * The GPT's configuration: a plain typed object with documented defaults and named presets. Overriding a key
 * that does not exist is an error naming the valid keys (minGPT's CfgNode, stricter).
 */
import type { PresetName } from '../spec';

export interface GPTConfig {
  /** Vocabulary size; set from the tokenizer. */
  vocabSize: number;
  /** Longest sequence (prompt + response) the model reads. */
  blockSize: number;
  nLayer: number;
  nHead: number;
  /** Width of the residual stream; a multiple of nHead. */
  dModel: number;
  /** Std of the normal init of weights; output projections are scaled by 1/sqrt(2·nLayer) (GPT-2). */
  initStd: number;
}

export const MODEL_PRESETS: Record<PresetName, Omit<GPTConfig, 'vocabSize'>> = {
  /** 2 layers, d=64 (113k parameters): learns `arith` to 30–70% on one CPU core in under five minutes. */
  tiny: { blockSize: 96, nLayer: 2, nHead: 4, dModel: 64, initStd: 0.02 },
  /** 4 layers, d=192: a few times slower, for longer runs and GSM8K-style text. */
  small: { blockSize: 192, nLayer: 4, nHead: 6, dModel: 192, initStd: 0.02 },
  /**
   * 8 layers, d=512, 8 heads of 64 (25.4M parameters): sized for a GPU (issue 18); a step of its 64 sequences is
   * ~750 GFLOP, about a minute on the wasm backend here. Context 256 leaves room for longer text; arith batches are
   * padded only to their longest sequence (under 100 tokens), so the context does not change a step's cost.
   */
  medium: { blockSize: 256, nLayer: 8, nHead: 8, dModel: 512, initStd: 0.02 },
};

export function resolveConfig<T extends object>(base: T, overrides: Record<string, unknown>, what: string): T {
  const out = { ...base } as Record<string, unknown>;
  for (const [k, v] of Object.entries(overrides)) {
    if (!(k in out)) throw new Error(`unknown ${what} key "${k}"; valid keys: ${Object.keys(out).join(', ')}`);
    if (typeof v !== typeof out[k]) throw new Error(`${what} key "${k}" must be a ${typeof out[k]}, got ${typeof v}`);
    out[k] = v;
  }
  return out as T;
}

export function validateModelConfig(c: GPTConfig): GPTConfig {
  if (c.dModel % c.nHead !== 0) throw new Error(`dModel (${c.dModel}) must be a multiple of nHead (${c.nHead})`);
  for (const k of ['blockSize', 'nLayer', 'nHead', 'dModel', 'vocabSize'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`${k} must be a positive integer, got ${c[k]}`);
  }
  return c;
}
