import { describe, expect, it } from 'vitest';
import { majorityCorrect, pairOrder, pairOutcomes, rerankCorrect, type ScoredCandidate } from '../src/assess';

const c = (text: string, answer: string | null, correct: boolean, score: number): ScoredCandidate => ({
  text,
  answer,
  correct,
  score,
});

describe('assessment of sampled candidates', () => {
  it('orders pairs per question, counting a repeated text once', () => {
    const q1 = [c('a', '4', true, -0.1), c('a', '4', true, -0.1), c('b', '5', false, -0.3), c('d', '6', false, 0)];
    const q2 = [c('x', '1', true, -1)]; // no negative: not assessed, but its score counts in the means
    const o = pairOrder([q1, q2]);
    expect(o).toMatchObject({ questions: 1, pairs: 2, ordered: 1 });
    expect(o.meanPositiveScore).toBeCloseTo((-0.1 - 1) / 2, 12);
    expect(o.meanNegativeScore).toBeCloseTo(-0.15, 12);
  });

  it('names each pair by its candidates’ first positions, the same pairs pairOrder counts', () => {
    const q1 = [c('a', '4', true, -0.1), c('a', '4', true, -0.1), c('b', '5', false, -0.3), c('d', '6', false, 0)];
    const q2 = [c('x', '1', true, -1)];
    const q3 = [c('n', '2', false, -2), c('p', '1', true, -1)];
    const pairs = pairOutcomes(
      new Map([
        ['q1', q1],
        ['q2', q2],
        ['q3', q3],
      ]),
    );
    expect(pairs).toEqual([
      { id: 'q1#0>2', ordered: true },
      { id: 'q1#0>3', ordered: false },
      { id: 'q3#1>0', ordered: true },
    ]);
    const o = pairOrder([q1, q2, q3]);
    expect(pairs.length).toBe(o.pairs);
    expect(pairs.filter((p) => p.ordered).length).toBe(o.ordered);
  });

  it('reranks by the model’s score, the first of equals winning', () => {
    expect(rerankCorrect([c('a', '1', false, -0.5), c('b', '2', true, -0.2), c('c', '3', false, -0.3)])).toBe(true);
    expect(rerankCorrect([c('a', '1', false, -0.2), c('b', '2', true, -0.2)])).toBe(false);
    expect(rerankCorrect([])).toBe(false);
  });

  it('votes by final answer, breaking a tie by the best score, ignoring unparsable samples', () => {
    const wrongMajority = [c('a', '7', false, -1), c('b', '7', false, -1), c('c', '4', true, 0)];
    expect(majorityCorrect(wrongMajority)).toBe(false);
    const tie = [c('a', '7', false, -1), c('b', '4', true, -0.5), c('c', '7', false, -2), c('d', '4', true, -3)];
    expect(majorityCorrect(tie)).toBe(true);
    const unparsable = [c('a', null, false, 0), c('b', null, false, 0), c('c', '4', true, -5)];
    expect(majorityCorrect(unparsable)).toBe(true);
    expect(majorityCorrect([c('a', null, false, 0)])).toBe(false);
  });
});
