/**
 * The grader's scanner against the regexes it replaced (kept here as the reference): the same answer on every text,
 * and time linear in the text where the regexes were quadratic. Imports the TensorFlow-free entry only.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { extractAnswer, extractOption, grade, normalizeNumber } from '../src/data/grader';

/** The grader as it was: regexes, quadratic on long runs of whitespace. */
const reference = {
  answer(completion: string): string | null {
    const NUM = /-?\$?\s*\d[\d,]*(?:\.\d+)?/;
    const PATTERNS = [
      /####\s*(-?\$?\s*\d[\d,]*(?:\.\d+)?)/g,
      /the (?:final )?answer is[:\s]*(-?\$?\s*\d[\d,]*(?:\.\d+)?)/gi,
      /(?:^|\n)\s*(?:A|Answer)\s*:\s*(-?\$?\s*\d[\d,]*(?:\.\d+)?)/gi,
    ];
    for (const re of PATTERNS) {
      const m = [...completion.matchAll(re)].at(-1);
      if (m?.[1]) return normalizeNumber(m[1]);
    }
    const last = completion.match(new RegExp(NUM.source, 'g'))?.at(-1);
    return last ? normalizeNumber(last) : null;
  },
  option(completion: string): string | null {
    const m =
      completion.match(/####\s*\(?([A-E])\)?/i) ??
      completion.match(/answer is[:\s]*\(?([A-E])\)?(?![a-z])/i) ??
      completion.match(/(?:^|\n)\s*(?:A|Answer)\s*:\s*\(?([A-E])\)?(?![a-z])/i);
    return m?.[1]?.toUpperCase() ?? null;
  },
};

/** Pieces that make the markers, their near misses and every character class the patterns look at. */
const PIECES = [
  '####',
  '#',
  ' ',
  '  ',
  '\n',
  '\t',
  '\u00a0',
  '\u2028',
  '-',
  '$',
  ',',
  '.',
  ':',
  '(',
  ')',
  '0',
  '7',
  '12',
  '1,200',
  '3.5',
  'A',
  'a',
  'Answer',
  'ANSWER',
  'nswer',
  'answer is',
  'The answer is',
  'the final answer is',
  'the ',
  'final ',
  'B',
  'c',
  'E',
  'F',
  'x',
  'Bx',
  'is',
  '\u017f',
  'K',
];
const text = fc.array(fc.constantFrom(...PIECES), { maxLength: 24 }).map((xs) => xs.join(''));

describe('the scanner reads what the regexes read', () => {
  it.each([
    ['#### 72', '72'],
    ['#####5', '5'],
    ['so A: 72', '72'],
    ['\n\n  answer :\n -$ 1,200.50 and then 3', '-1200.5'],
    ['The answer is: 4. Then #### 5 and #### 6', '6'],
    ['the final answer is 8; The answer is 9', '9'],
    ['A: 1\nA: 2', '2'],
    ['- $ 5', '5'],
    ['--5', '-5'],
    ['9'.repeat(400), null],
    ['#### x but 3', '3'],
  ])('answer of %j is %j', (completion, answer) => {
    expect(extractAnswer(completion)).toBe(answer);
    expect(reference.answer(completion)).toBe(answer);
  });

  it.each([
    ['The answer is (C)', 'C'],
    ['#### b', 'B'],
    ['#####(d', 'D'],
    ['#### Because', 'B'],
    ['answer is Bx, answer is (E)x', 'E'],
    ['\nAnswer: (a) apples', 'A'],
    ['\nAnswer:\nA', 'A'],
    ['Answer: e.', 'E'],
    ['answer is F', null],
  ])('option of %j is %j', (completion, option) => {
    expect(extractOption(completion)).toBe(option);
    expect(reference.option(completion)).toBe(option);
  });

  it('on 20,000 random texts of markers, near misses and white space', () => {
    fc.assert(
      fc.property(text, (s) => {
        expect(extractAnswer(s)).toBe(reference.answer(s));
        expect(extractOption(s)).toBe(reference.option(s));
      }),
      { numRuns: 20_000, seed: 17 },
    );
  }, 60_000);
});

describe('the scanner is linear in the text', () => {
  const MB = 1_000_000;
  /** What made the regexes quadratic: long runs of white space after, or instead of, a marker. */
  const hostile: [string, string][] = [
    ['spaces', ' '.repeat(MB)],
    ['newlines', '\n'.repeat(MB)],
    ['"the answer is" and spaces', `the answer is${' '.repeat(MB)}`],
    ['"answer is:" and colons and spaces', `answer is${': '.repeat(MB / 2)}`],
    ['a line "A" and spaces', `\nA${' '.repeat(MB)}`],
    ['a line "A:" and newlines', `\nA:${'\n'.repeat(MB)}`],
    ['"####" and spaces', `####${' '.repeat(MB)}`],
    ['"-$" and spaces, repeated', `-$${' '.repeat(1000)}`.repeat(MB / 1002)],
    ['"1," repeated', '1,'.repeat(MB / 2)],
    ['"#" repeated', '#'.repeat(MB)],
    ['"\\nA \\n" repeated', '\nA \n'.repeat(MB / 4)],
  ];
  // The regexes took 1.2 s for 20,000 spaces after "the answer is" and grow with the square: a megabyte would take
  // about an hour. The scanner reads a megabyte in milliseconds (1.2 s was seen once on a machine running several
  // test processes on 2 cores); 5 s leaves room for that and still fails any super-linear scan by orders of magnitude.
  it.each(hostile)('grades a megabyte of %s in seconds, not hours', (_name, s) => {
    for (const gold of ['5', 'C']) {
      const t0 = performance.now();
      grade(s, gold);
      expect(performance.now() - t0).toBeLessThan(5000);
    }
  });
});
