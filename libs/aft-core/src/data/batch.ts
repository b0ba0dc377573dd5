/**
 * Examples → token batches. A sequence is `<bos> prompt response <eos>`; the model reads all but the last token
 * and predicts all but the first. Only response tokens (and the final <eos>) carry loss weight: the prompt is
 * masked out (VFT's NLL on the reference COT, docs/architecture.md "Pipeline"). Batches are right-padded to their longest sequence;
 * under causal attention padding at the end changes nothing before it.
 */
import { BOS, EOS, PAD, type CharTokenizer } from '../tokenizer';

export interface Example {
  /** The question and its trailing newline: what the model is given. */
  prompt: string;
  /** The chain of thought ending with `#### answer`: what it learns to write. */
  response: string;
}

export interface TokenBatch {
  B: number;
  T: number;
  /** [B·T] model input. */
  input: Int32Array;
  /** [B·T] next-token targets. */
  target: Int32Array;
  /** [B·T] 1 where the target is a response token, else 0. */
  weight: Float32Array;
}

export const promptOf = (question: string) => `${question}\n`;

export function encodeExample(
  tok: CharTokenizer,
  ex: Example,
  blockSize: number,
): { ids: number[]; promptLen: number } {
  const p = [BOS, ...tok.encode(ex.prompt)];
  const ids = [...p, ...tok.encode(ex.response), EOS];
  if (ids.length > blockSize + 1) ids.length = blockSize + 1; // truncated: the model never sees more
  return { ids, promptLen: p.length };
}

export function makeBatch(tok: CharTokenizer, examples: readonly Example[], blockSize: number): TokenBatch {
  const enc = examples.map((e) => encodeExample(tok, e, blockSize));
  const B = enc.length;
  const T = Math.max(...enc.map((e) => e.ids.length - 1));
  const input = new Int32Array(B * T).fill(PAD);
  const target = new Int32Array(B * T).fill(PAD);
  const weight = new Float32Array(B * T);
  enc.forEach(({ ids, promptLen }, b) => {
    for (let t = 0; t < ids.length - 1; t++) {
      input[b * T + t] = ids[t]!;
      target[b * T + t] = ids[t + 1]!;
      weight[b * T + t] = t + 1 >= promptLen ? 1 : 0;
    }
  });
  return { B, T, input, target, weight };
}
