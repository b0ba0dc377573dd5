import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkSteps,
  CharTokenizer,
  defaultDataDir,
  extractAnswer,
  generateArith,
  grade,
  loadAqua,
  loadGsm8k,
  trainingProblems,
  TEMPLATES,
} from '../src';

describe('CharTokenizer', () => {
  it('round-trips text, including newlines and punctuation', () => {
    const tok = new CharTokenizer();
    const s = 'Ann has 7 pens, gets 5. Total?\n7+5=12\n#### 12';
    expect(tok.decode(tok.encode(s))).toBe(s);
    expect(new CharTokenizer(tok.spec()).encode(s)).toEqual(tok.encode(s));
  });
  it('maps unknown characters to <unk> and refuses a foreign vocabulary', () => {
    const tok = new CharTokenizer();
    expect(tok.decode(tok.encode('é'))).toBe('\ufffd');
    expect(() => new CharTokenizer({ kind: 'char', vocab: ['a', 'b'] })).toThrow(/unsupported tokenizer/);
  });
});

describe('arith', () => {
  const data = generateArith({ train: 3000, val: 200, test: 300 });

  it('gives every question several COTs that all pass the step checker and reach the answer', () => {
    let multi = 0;
    for (const p of [...data.train, ...data.val, ...data.test]) {
      expect(p.cots[p.ref]).toBeDefined();
      if (p.cots.length > 1) multi++;
      for (const c of p.cots) {
        const checks = checkSteps(c);
        expect(checks.length).toBeGreaterThanOrEqual(2);
        expect(checks.every((s) => s.parsed && s.correct)).toBe(true);
        expect(extractAnswer(c)).toBe(p.answer);
      }
    }
    expect(multi / (data.train.length + data.val.length + data.test.length)).toBeGreaterThan(0.9);
  });

  it('has disjoint splits, a stable hash, and covers every template', () => {
    const q = (xs: { question: string }[]) => new Set(xs.map((p) => p.question));
    const [tr, va, te] = [q(data.train), q(data.val), q(data.test)];
    for (const x of te) expect(tr.has(x) || va.has(x)).toBe(false);
    for (const x of va) expect(tr.has(x)).toBe(false);
    expect(generateArith({ train: 3000, val: 200, test: 300 }).hash).toBe(data.hash);
    expect(generateArith({ train: 3000, val: 200, test: 300, seed: 9 }).hash).not.toBe(data.hash);
    expect(new Set(data.train.map((p) => p.template))).toEqual(new Set(Object.keys(TEMPLATES)));
  });

  it('catches wrong and unparsable steps', () => {
    expect(checkSteps('3+4=8\n8*2=16\n#### 16').map((s) => s.correct)).toEqual([false, true]);
    expect(checkSteps('three plus four\n#### 7')).toEqual([{ line: 'three plus four', parsed: false, correct: false }]);
  });
});

describe('grader', () => {
  it.each([
    ['#### 72', '72', true],
    ['so A: 72', '72', true],
    ['The answer is 72.', '72', true],
    ['She paid $1,200 in total', '1200', true],
    ['It costs 72 dollars.', '72', true],
    ['First 3 then 4.\n#### 7!', '7', true],
    ['#### 7.50', '7.5', true],
    ['#### 8', '7', false],
    ['no number here', '7', false],
    ['The answer is (C)', 'C', true],
    ['#### b', 'B', true],
  ])('grades %j against %s', (completion, gold, correct) => {
    expect(grade(completion, gold).correct).toBe(correct);
  });
  it('says when there is no answer to extract', () => {
    expect(grade('I do not know', '5')).toEqual({ extracted: null, correct: false });
  });
});

describe("GSM8K and AQUA-RAT from the repository's data/", () => {
  it('ships the files byte-exact, as SHA256SUMS lists them', () => {
    const dir = defaultDataDir();
    expect(dir).toBe(resolve(import.meta.dirname, '../../../data'));
    const sums = readFileSync(join(dir, 'SHA256SUMS'), 'utf8').trim().split('\n');
    expect(sums).toHaveLength(4);
    for (const line of sums) {
      const [sum, file] = line.split(/\s+/);
      expect(
        createHash('sha256')
          .update(readFileSync(join(dir, file!)))
          .digest('hex'),
        file,
      ).toBe(sum);
    }
    for (const licence of ['gsm8k/LICENSE', 'aqua_rat/LICENSE']) expect(existsSync(join(dir, licence))).toBe(true);
  });
  it('extracts the gold answer of every GSM8K test row from its reference solution', () => {
    const test = loadGsm8k('test');
    expect(test).toHaveLength(1319);
    for (const p of test) expect(grade(p.reference, p.answer).correct, p.id).toBe(true);
  });
  it('keeps GSM8K test out of the training set', () => {
    const train = trainingProblems();
    expect(train).toHaveLength(7473);
    const test = new Set(loadGsm8k('test').map((p) => p.question));
    expect(train.some((p) => test.has(p.question))).toBe(false);
  });
  it('reads AQUA-RAT with option-letter answers', () => {
    const dev = loadAqua('dev');
    expect(dev).toHaveLength(254);
    for (const p of dev) expect(grade(p.reference, p.answer).correct).toBe(true);
  });
});
