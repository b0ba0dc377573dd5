/**
 * Alignment training (the paper's step 3): continue from the VFT parent with
 *   L = w_nll · NLL(reference COT) + L_method(scores of the sampled candidates)
 * reusing the part-1 training loop. RRHF and PRO put their NLL on the best candidate, as in their papers.
 * DPO's reference log-probabilities come from the frozen parent and are computed once per sample set.
 * Each step reports every loss term, the mean positive and negative scores and their gap, and the fraction of
 * negatives below the boundary.
 */
import * as tf from '@tensorflow/tfjs';
import { makeBatch, promptOf, type Example, type TokenBatch } from '../data/batch';
import type { LabelledQuestion } from '../label';
import type { GPT } from '../model/gpt';
import { sequenceLogProbs } from '../model/logprob';
import { boundary, pairMask } from '../losses/common';
import { checkSpec, groupsLoss, type LossSpec, type ScoredGroup } from '../losses/registry';
import type { Rng } from '../rng';
import type { CharTokenizer } from '../tokenizer';
import type { LossResult } from './loop';

export interface AlignSpec extends LossSpec {
  /** Weight of the NLL term (0 allowed: the quickest way to watch an unconstrained run collapse). */
  wNll: number;
  /** `binary`: correct vs incorrect; `ranked`: by the step checker (more correct steps rank higher). */
  feedback: 'binary' | 'ranked';
  /** Questions per step. */
  groupsPerStep: number;
  /** Candidates kept per question (the first ones, after de-duplication). */
  maxCandidates: number;
  /**
   * The question's reference COT joins its candidates as a best-ranked one (unless a candidate already is it): every
   * group then has a known-good positive, and questions the model never answered right become usable.
   */
  referenceAsPositive?: boolean;
}

interface Group {
  q: LabelledQuestion;
  texts: string[];
  ranks: number[];
  ref?: number[];
}

/** Groups usable by the method: at least one pair under the chosen feedback. */
export function usableGroups(set: readonly LabelledQuestion[], spec: AlignSpec): Group[] {
  return set
    .map((q) => {
      const cands = q.candidates.slice(0, spec.maxCandidates);
      const texts = cands.map((c) => c.text);
      const ranks = cands.map((c) => (spec.feedback === 'ranked' ? c.rank : c.binaryRank));
      if (spec.referenceAsPositive && !texts.includes(q.reference)) {
        // binary: the reference joins the positives (rank 0); ranked: it ranks above every candidate, since a
        // candidate's rank 0 only says it is the best sampled, not that it is right
        const shifted = spec.feedback === 'ranked' ? ranks.map((r) => r + 1) : ranks;
        return { q, texts: [q.reference, ...texts], ranks: [0, ...shifted] };
      }
      return { q, texts, ranks };
    })
    .filter((g) => new Set(g.ranks).size > 1);
}

/** Summed log-probability of every candidate under the (frozen) model: DPO's reference, computed once. */
export async function referenceLogProbs(
  model: GPT,
  tok: CharTokenizer,
  groups: Group[],
  batchSize = 64,
): Promise<void> {
  const flat = groups.flatMap((g) => g.texts.map((t) => ({ prompt: promptOf(g.q.question), response: t })));
  const out: number[] = [];
  for (let s = 0; s < flat.length; s += batchSize) {
    const batch = makeBatch(tok, flat.slice(s, s + batchSize), model.config.blockSize);
    const sum = tf.tidy(() => sequenceLogProbs(model, batch).sum);
    out.push(...((await sum.data()) as Float32Array));
    sum.dispose();
  }
  let o = 0;
  for (const g of groups) {
    g.ref = out.slice(o, o + g.texts.length);
    o += g.texts.length;
  }
}

/**
 * The sample set holds no question with both a better and a worse candidate, so no method has a pair to rank. The
 * set is drawn deterministically from the parent, so a retry draws the same: callers treat it as permanent.
 */
export class NoContrastError extends Error {
  override name = 'NoContrastError';
}

/**
 * A batch source and loss for `trainLoop`. Each step draws `groupsPerStep` groups; one token batch holds their
 * candidates followed by the NLL targets (reference COTs, or each group's best candidate for RRHF/PRO).
 */
export function alignObjective(tok: CharTokenizer, blockSize: number, groups: Group[], spec: AlignSpec) {
  checkSpec(spec);
  if (!groups.length) throw new NoContrastError('no question in the sample set has both better and worse candidates');
  if (spec.method === 'dpo' && groups.some((g) => !g.ref)) throw new Error('dpo: compute referenceLogProbs first');
  const nllOnBest = spec.method === 'rrhf' || spec.method === 'pro';
  let current: Group[] = [];

  const nextBatch = (rng: Rng): TokenBatch => {
    current = Array.from({ length: spec.groupsPerStep }, () => groups[rng.int(0, groups.length - 1)]!);
    const ex: Example[] = current.flatMap((g) => g.texts.map((t) => ({ prompt: promptOf(g.q.question), response: t })));
    for (const g of current) {
      const best = g.texts[g.ranks.indexOf(Math.min(...g.ranks))]!;
      ex.push({ prompt: promptOf(g.q.question), response: nllOnBest ? best : g.q.reference });
    }
    return makeBatch(tok, ex, blockSize);
  };

  const loss = (model: GPT, batch: TokenBatch): LossResult => {
    const { sum, count } = sequenceLogProbs(model, batch);
    const nCand = current.reduce((a, g) => a + g.texts.length, 0);
    const nllSum = tf.slice(sum, [nCand], [current.length]);
    const nllCount = tf.slice(count, [nCand], [current.length]);
    const nll = tf.neg(tf.div(tf.sum(nllSum), tf.maximum(tf.sum(nllCount), 1))) as tf.Scalar;
    const mean = tf.div(sum, tf.maximum(count, 1)) as tf.Tensor1D; // s(c): length-normalised
    const scored: ScoredGroup[] = [];
    const pos: tf.Tensor[] = [];
    const neg: tf.Tensor[] = [];
    let off = 0;
    let below = tf.scalar(0);
    let negatives = 0;
    for (const g of current) {
      const n = g.texts.length;
      const s = tf.slice(spec.method === 'dpo' ? sum : mean, [off], [n]) as tf.Tensor1D;
      const m = tf.slice(mean, [off], [n]) as tf.Tensor1D;
      const best = Math.min(...g.ranks);
      const isPos = tf.tensor1d(g.ranks.map((r) => (r === best ? 1 : 0)));
      pos.push(tf.sum(tf.mul(m, isPos)), tf.sum(isPos));
      neg.push(tf.sum(tf.mul(m, tf.sub(1, isPos))), tf.sub(n, tf.sum(isPos)));
      // negatives (candidates with a better one) under the boundary B_j, on the scale the method's bound acts on:
      // DPO's is β_dpo × the summed log-ratio to the reference, the others' the length-normalised score
      const pm = pairMask(g.ranks);
      const hasBetter = tf.greater(tf.sum(pm.mask, 0), 0);
      const scale =
        spec.method === 'dpo' && g.ref ? (tf.mul(spec.dpoBeta, tf.sub(s, tf.tensor1d(g.ref))) as tf.Tensor1D) : m;
      const B = boundary(scale, pm.mask, spec.beta);
      below = tf.add(below, tf.sum(tf.cast(tf.logicalAnd(hasBetter, tf.less(scale, B)), 'float32'))) as tf.Scalar;
      negatives += g.ranks.filter((r) => r > best).length;
      scored.push({ scores: s, ranks: g.ranks, refScores: g.ref ? tf.tensor1d(g.ref) : undefined });
      off += n;
    }
    const method = groupsLoss(spec, scored).loss;
    const total = tf.add(tf.mul(nll, spec.wNll), method) as tf.Scalar;
    const meanOf = (parts: tf.Tensor[]) => {
      const sums = parts.filter((_, i) => i % 2 === 0);
      const counts = parts.filter((_, i) => i % 2 === 1);
      return tf.div(tf.addN(sums), tf.maximum(tf.addN(counts), 1)) as tf.Scalar;
    };
    const posMean = meanOf(pos);
    const negMean = meanOf(neg);
    return {
      loss: total,
      metrics: {
        'loss/nll': nll,
        [`loss/${spec.method}`]: method,
        'score/positive': posMean,
        'score/negative': negMean,
        'score/gap': tf.sub(posMean, negMean) as tf.Scalar,
        'boundary/belowFraction': tf.div(below, Math.max(negatives, 1)) as tf.Scalar,
      },
    };
  };
  return { nextBatch, loss };
}
