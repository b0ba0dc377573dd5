/**
 * `arith`: a seeded generator of short multi-step arithmetic word problems whose questions admit several correct
 * chains of thought (independent steps in either order, equivalent decompositions), with a step checker.
 * docs/architecture.md "Data and backends": positives that differ from the reference must exist (the paper's point about MLE), and
 * candidates can be ranked by how many of their steps are right.
 *
 * A COT is one step per line, `x op y=z`, then `#### answer`. Questions stay short because the model reads
 * characters: every character is a token the tiny model pays for.
 */
import { createHash } from 'node:crypto';
import { Rng } from '../rng';

export interface ArithProblem {
  id: string;
  template: string;
  question: string;
  /** Every correct COT the generator knows for this question; `cots[ref]` is the reference. */
  cots: string[];
  ref: number;
  answer: string;
}

export interface ArithOptions {
  seed: number;
  /** Largest addend; products use factors up to `maxFactor`. */
  maxAddend: number;
  maxFactor: number;
  /** Sizes of the splits; questions never repeat across splits. */
  train: number;
  val: number;
  test: number;
}

/**
 * Single-digit addends and factors up to 5: tuned so the `tiny` VFT model reaches 30–70% greedy accuracy in
 * ~700 steps (maxAddend 12 / maxFactor 6 gave 11% in 400 steps; 20 / 9 gave 5% in 300).
 */
export const ARITH_DEFAULTS: ArithOptions = {
  seed: 1234,
  maxAddend: 9,
  maxFactor: 5,
  train: 20_000,
  val: 300,
  test: 500,
};
/** Bumped whenever the generator's output changes, so the dataset hash changes with it. */
export const ARITH_VERSION = 2;

const NAMES = ['Ann', 'Bob', 'Cal', 'Dee', 'Eve', 'Fay', 'Gus', 'Hal', 'Ivy', 'Jo'];
const ITEMS = ['pens', 'cats', 'cups', 'figs', 'hats', 'jars', 'keys', 'maps', 'nuts', 'owls'];

const step = (x: number, op: '+' | '-' | '*', y: number) => {
  const z = op === '+' ? x + y : op === '-' ? x - y : x * y;
  return { line: `${x}${op}${y}=${z}`, z };
};
const cot = (...lines: string[]) => lines.join('\n');
const uniq = (xs: string[]) => [...new Set(xs)];

type Template = (r: Rng, o: ArithOptions) => Omit<ArithProblem, 'id' | 'ref'>;

/** The templates. Each lists every order of its independent steps as a separate correct COT. */
export const TEMPLATES: Record<string, Template> = {
  // a + b + c: any pair first
  add3(r, o) {
    const [n, x, y] = [r.pick(NAMES), r.pick(ITEMS), r.pick(ITEMS.filter((i) => i !== 'pens'))];
    const [a, b, c] = [r.int(2, o.maxAddend), r.int(2, o.maxAddend), r.int(2, o.maxAddend)];
    const q = `${n} has ${a} ${x} and ${b} ${y}, gets ${c} ${x}. Total?`;
    const orders: [number, number, number][] = [
      [a, c, b],
      [a, b, c],
      [b, c, a],
      [c, a, b],
    ];
    const cots = orders.map(([p, s, t]) => {
      const s1 = step(p, '+', s);
      const s2 = step(s1.z, '+', t);
      return cot(s1.line, s2.line, `#### ${s2.z}`);
    });
    return { template: 'add3', question: q, cots: uniq(cots), answer: String(a + b + c) };
  },
  // a + b - c: add first, or take away first
  addsub(r, o) {
    const [n, x] = [r.pick(NAMES), r.pick(ITEMS)];
    const a = r.int(5, o.maxAddend);
    const b = r.int(2, o.maxAddend);
    const c = r.int(2, a);
    const q = `${n} has ${a} ${x}, gets ${b}, gives ${c}. Left?`;
    const s1 = step(a, '+', b);
    const s2 = step(s1.z, '-', c);
    const t1 = step(a, '-', c);
    const t2 = step(t1.z, '+', b);
    const cots = [cot(s1.line, s2.line, `#### ${s2.z}`), cot(t1.line, t2.line, `#### ${t2.z}`)];
    return { template: 'addsub', question: q, cots: uniq(cots), answer: String(a + b - c) };
  },
  // a × b + c: factors in either order
  muladd(r, o) {
    const [n, x] = [r.pick(NAMES), r.pick(ITEMS)];
    const [a, b, c] = [r.int(2, o.maxFactor), r.int(2, o.maxFactor), r.int(2, o.maxAddend)];
    const q = `${n} has ${a} bags of ${b} ${x} and ${c} more. Total?`;
    const cots = [
      [a, b],
      [b, a],
    ].map(([p, s]) => {
      const s1 = step(p!, '*', s!);
      const s2 = step(s1.z, '+', c);
      return cot(s1.line, s2.line, `#### ${s2.z}`);
    });
    return { template: 'muladd', question: q, cots: uniq(cots), answer: String(a * b + c) };
  },
  // a × b + c × d: either product first
  mul2(r, o) {
    const [x, y] = [r.pick(ITEMS), r.pick(ITEMS)];
    const [a, b, c, d] = [r.int(2, o.maxFactor), r.int(2, o.maxFactor), r.int(2, o.maxFactor), r.int(2, o.maxFactor)];
    const q = `${a} bags of ${b} ${x} and ${c} bags of ${d} ${y}. Total?`;
    const p1 = step(a, '*', b);
    const p2 = step(c, '*', d);
    const cots = [
      cot(p1.line, p2.line, step(p1.z, '+', p2.z).line, `#### ${p1.z + p2.z}`),
      cot(p2.line, p1.line, step(p2.z, '+', p1.z).line, `#### ${p1.z + p2.z}`),
    ];
    return { template: 'mul2', question: q, cots: uniq(cots), answer: String(a * b + c * d) };
  },
};

export interface ArithDataset {
  train: ArithProblem[];
  val: ArithProblem[];
  test: ArithProblem[];
  /** sha256 over the generator version and options: two runs with the same hash saw the same data. */
  hash: string;
  options: ArithOptions;
}

/** Generates disjoint train/val/test splits: a question appears in at most one split. */
export function generateArith(opts: Partial<ArithOptions> = {}): ArithDataset {
  const o = { ...ARITH_DEFAULTS, ...opts };
  const r = new Rng(o.seed);
  const names = Object.keys(TEMPLATES);
  const seen = new Set<string>();
  const all: ArithProblem[] = [];
  const want = o.train + o.val + o.test;
  let misses = 0;
  while (all.length < want) {
    const t = names[all.length % names.length]!;
    const p = TEMPLATES[t]!(r, o);
    if (seen.has(p.question)) {
      if (++misses > want * 20) throw new Error(`arith: only ${all.length} distinct questions exist for these options`);
      continue;
    }
    seen.add(p.question);
    all.push({ ...p, id: `arith-${all.length}`, ref: r.int(0, p.cots.length - 1) });
  }
  r.shuffle(all);
  const hash = createHash('sha256')
    .update(JSON.stringify({ v: ARITH_VERSION, o }))
    .digest('hex')
    .slice(0, 16);
  return {
    test: all.slice(0, o.test),
    val: all.slice(o.test, o.test + o.val),
    train: all.slice(o.test + o.val),
    hash,
    options: o,
  };
}

export interface StepCheck {
  line: string;
  /** Parsed as `x op y=z`. */
  parsed: boolean;
  /** x op y really is z. */
  correct: boolean;
}

/** Checks every step line of a COT (lines before `####`); a line that is not `x op y=z` is a wrong step. */
export function checkSteps(cotText: string): StepCheck[] {
  const lines = cotText.split('\n').map((l) => l.trim());
  const body = lines.slice(0, lines.findIndex((l) => l.startsWith('####')) >>> 0).filter((l) => l.length > 0);
  return body.map((line) => {
    const m = line.match(/^(-?\d+)\s*([+\-*x×])\s*(-?\d+)\s*=\s*(-?\d+)$/);
    if (!m) return { line, parsed: false, correct: false };
    const [x, y, z] = [Number(m[1]), Number(m[3]), Number(m[4])];
    const op = m[2]!;
    const v = op === '+' ? x + y : op === '-' ? x - y : x * y;
    return { line, parsed: true, correct: v === z };
  });
}

/**
 * A candidate's rank among a question's candidates (lower is better): a correct final answer with every step right
 * ranks first; otherwise more correct steps rank higher. `stepStrict` demands every step right for a positive
 * (a right answer can come from two wrong steps).
 */
export function rankKey(
  cotText: string,
  correctAnswer: boolean,
): { correctSteps: number; steps: number; allStepsRight: boolean } {
  const checks = checkSteps(cotText);
  const correctSteps = checks.filter((c) => c.correct).length;
  return {
    correctSteps,
    steps: checks.length,
    allStepsRight: checks.length > 0 && correctSteps === checks.length && correctAnswer,
  };
}
