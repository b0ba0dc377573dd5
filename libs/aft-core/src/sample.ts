/**
 * Sampling and scoring. Generation uses a key/value cache: prompts of equal length are batched, the prompt is
 * read once, then one token per step (5× faster than recomputing, and the same result).
 * Scores are s(c) = mean log p(c_t | q, c_<t) over the response tokens, computed in padded batches.
 */
import * as tf from '@tensorflow/tfjs';
import { makeBatch, promptOf } from './data/batch';
import { disposeCache, type GPT, type KVCache } from './model/gpt';
import { sequenceLogProbs } from './model/logprob';
import { BOS, EOS, type CharTokenizer } from './tokenizer';
import type { Rng } from './rng';

export interface GenerateOptions {
  /** 0 = greedy. */
  temperature: number;
  /** Sample among the k most likely tokens (0 = all). */
  topK: number;
  maxNewTokens: number;
  /** Sequences decoded together. */
  batchSize: number;
}

export const GREEDY: GenerateOptions = { temperature: 0, topK: 0, maxNewTokens: 64, batchSize: 64 };

export interface Generation {
  text: string;
  /** Stopped by <eos> (false: ran into the token limit). */
  finished: boolean;
}

function pickToken(logits: Float32Array, off: number, V: number, o: GenerateOptions, rng: Rng): number {
  if (o.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[off + i]! > logits[off + best]!) best = i;
    return best;
  }
  const idx = Array.from({ length: V }, (_, i) => i);
  let cand = idx;
  if (o.topK > 0 && o.topK < V) cand = idx.sort((a, b) => logits[off + b]! - logits[off + a]!).slice(0, o.topK);
  let max = -Infinity;
  for (const i of cand) max = Math.max(max, logits[off + i]!);
  const w = cand.map((i) => Math.exp((logits[off + i]! - max) / o.temperature));
  let u = rng.next() * w.reduce((a, b) => a + b, 0);
  for (let j = 0; j < cand.length; j++) {
    u -= w[j]!;
    if (u <= 0) return cand[j]!;
  }
  return cand[cand.length - 1]!;
}

/** Completions for each prompt (the question without its newline is added by promptOf). */
export async function generate(
  model: GPT,
  tok: CharTokenizer,
  questions: readonly string[],
  o: GenerateOptions,
  rng: Rng,
): Promise<Generation[]> {
  const V = model.config.vocabSize;
  const encoded = questions.map((q) => [BOS, ...tok.encode(promptOf(q))]);
  const out: Generation[] = new Array(questions.length);
  // group by prompt length so a batch needs no padding
  const byLen = new Map<number, number[]>();
  encoded.forEach((e, i) => byLen.set(e.length, [...(byLen.get(e.length) ?? []), i]));
  for (const [len, all] of [...byLen].sort((a, b) => a[0] - b[0])) {
    for (let s = 0; s < all.length; s += o.batchSize) {
      const ids = all.slice(s, s + o.batchSize);
      const B = ids.length;
      const maxNew = Math.min(o.maxNewTokens, model.config.blockSize - len);
      const generated: number[][] = ids.map(() => []);
      const done = new Array<boolean>(B).fill(false);
      const cache: KVCache = { k: [], v: [], length: 0 };
      try {
        let logits = tf.tidy(() => {
          const full = model.forward(
            tf.tensor2d(
              ids.flatMap((i) => encoded[i]!),
              [B, len],
              'int32',
            ),
            cache,
          ); // [B·len, V]
          return tf.gather(
            full,
            ids.map((_, b) => b * len + len - 1),
          ); // [B, V]
        });
        for (let t = 0; t < maxNew; t++) {
          const data = (await logits.data()) as Float32Array;
          logits.dispose();
          const next = ids.map((_, b) => (done[b] ? EOS : pickToken(data, b * V, V, o, rng)));
          next.forEach((n, b) => {
            if (done[b]) return;
            if (n === EOS) done[b] = true;
            else generated[b]!.push(n);
          });
          if (done.every(Boolean) || t === maxNew - 1) break;
          logits = tf.tidy(() => model.decodeStep(tf.tensor1d(next, 'int32'), cache));
        }
      } finally {
        disposeCache(cache);
      }
      ids.forEach((i, b) => (out[i] = { text: tok.decode(generated[b]!), finished: done[b]! }));
    }
  }
  return out;
}

/** s(c): mean response-token log-likelihood of each completion given its question. */
export async function scoreCompletions(
  model: GPT,
  tok: CharTokenizer,
  items: readonly { question: string; completion: string }[],
  batchSize = 64,
): Promise<number[]> {
  const scores: number[] = [];
  for (let s = 0; s < items.length; s += batchSize) {
    const chunk = items.slice(s, s + batchSize);
    const batch = makeBatch(
      tok,
      chunk.map((it) => ({ prompt: promptOf(it.question), response: it.completion })),
      model.config.blockSize,
    );
    const mean = tf.tidy(() => {
      const { sum, count } = sequenceLogProbs(model, batch);
      return tf.div(sum, tf.maximum(count, 1));
    });
    scores.push(...((await mean.data()) as Float32Array));
    mean.dispose();
  }
  return scores;
}
