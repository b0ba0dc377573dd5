/**
 * Final-answer extraction and grading, shared by the trainer, the labeller, `aft grade` and the server (which
 * grades the samples clients log). It reads what models actually write: `#### 72`, `A: 72`, `The answer is 72.`,
 * `$1,200`, `72 dollars`, trailing punctuation, and AQUA-style option letters.
 *
 * The server runs it on user text of up to 100,000 characters a field, so it is a hand-written scanner, linear in
 * the text. It reads exactly what these regexes did (test/grader.test.ts keeps them as the reference):
 *   number  /-?\$?\s*\d[\d,]*(?:\.\d+)?/   — the last match of, in order: `####\s*(number)`,
 *           `the (?:final )?answer is[:\s]*(number)`/i, `(?:^|\n)\s*(?:A|Answer)\s*:\s*(number)`/i, bare `number`;
 *   option  the first match of `####\s*\(?([A-E])\)?`/i, `answer is[:\s]*\(?([A-E])\)?(?![a-z])`/i,
 *           `(?:^|\n)\s*(?:A|Answer)\s*:\s*\(?([A-E])\)?(?![a-z])`/i.
 * As regexes they were quadratic: `\s*` before `\d` rescans a run of whitespace from each position in it (1.2 s
 * for 20,000 spaces after "the answer is", about 30 s at 100,000).
 */

/** Canonical numeric form: no thousands separators or currency, no trailing zeros (`1,200.50` → `1200.5`). */
export function normalizeNumber(s: string): string | null {
  const cleaned = s.replace(/[$,\s]/g, '').replace(/\.$/, '');
  if (!/^-?\d+(\.\d+)?$/.test(cleaned)) return null;
  const n = Number(cleaned);
  if (!Number.isFinite(n)) return null;
  return String(n);
}

/** Whether a UTF-16 code unit is in the regex class `\s` (ECMAScript white space and line terminators). */
function isSpace(c: number): boolean {
  return (
    c === 32 ||
    (c >= 9 && c <= 13) ||
    (c > 127 &&
      (c === 0xa0 ||
        c === 0x1680 ||
        (c >= 0x2000 && c <= 0x200a) ||
        c === 0x2028 ||
        c === 0x2029 ||
        c === 0x202f ||
        c === 0x205f ||
        c === 0x3000 ||
        c === 0xfeff))
  );
}
const isDigit = (c: number) => c >= 48 && c <= 57;
/** Regex `[a-z]` under the i flag (no u flag: only ASCII letters fold to ASCII). */
const isAsciiLetter = (c: number) => (c | 32) >= 97 && (c | 32) <= 122;

/** The first index at or after `i` that is not `\s`. */
function skipSpace(s: string, i: number): number {
  while (i < s.length && isSpace(s.charCodeAt(i))) i++;
  return i;
}

/** The first index at or after `i` that is not `[:\s]`. */
function skipColonSpace(s: string, i: number): number {
  while (i < s.length && (s.charCodeAt(i) === 58 || isSpace(s.charCodeAt(i)))) i++;
  return i;
}

/**
 * Where `-?\$?\s*` read from `i` stops: a number starts at `i` exactly when a digit stands there. Greedy is
 * enough — giving back the `-`, `$` or a space leaves one of them, not a digit, where `\d` must match.
 */
function numberHead(s: string, i: number): number {
  if (s.charCodeAt(i) === 45) i++; // -
  if (s.charCodeAt(i) === 36) i++; // $
  return skipSpace(s, i);
}

/** The end of `\d[\d,]*(?:\.\d+)?` read from the digit at `i`. */
function numberTail(s: string, i: number): number {
  i++;
  for (let c = s.charCodeAt(i); isDigit(c) || c === 44; c = s.charCodeAt(++i));
  if (s.charCodeAt(i) === 46 && isDigit(s.charCodeAt(i + 1))) {
    i += 2;
    while (isDigit(s.charCodeAt(i))) i++;
  }
  return i;
}

/** The end of a number starting at `i`, or -1 when none starts there. */
function numberAt(s: string, i: number): number {
  const d = numberHead(s, i);
  return isDigit(s.charCodeAt(d)) ? numberTail(s, d) : -1;
}

/**
 * The last number of the text (the last match of the global number regex). A start that fails has read `-?\$?\s*`
 * to a non-digit; every start inside what it read fails at the same place, so the scan resumes there.
 */
function lastNumber(s: string): string | null {
  let last: string | null = null;
  let i = 0;
  while (i < s.length) {
    const d = numberHead(s, i);
    if (isDigit(s.charCodeAt(d))) {
      const end = numberTail(s, d);
      last = s.slice(i, end);
      i = end;
    } else i = Math.max(i + 1, d);
  }
  return last;
}

/**
 * Where the value of each line that opens with `A:` or `Answer:` starts: the index after
 * `(?:^|\n)\s*(?:A|Answer)\s*:\s*`, in text order. Every newline of the leading `\s*` run starts the same match,
 * so the run is read once; what follows the colon is read at most twice (once more by a newline inside it).
 */
function* answerLines(s: string): Generator<number> {
  for (let nl = 0; nl >= 0 && nl < s.length; ) {
    const j = skipSpace(s, nl === 0 ? 0 : nl + 1);
    const colon = answerColon(s, j);
    if (colon >= 0) yield skipSpace(s, colon + 1);
    nl = s.indexOf('\n', j);
  }
}

/** The index of the colon of `(?:A|Answer)\s*:` read from `j` (A before Answer, as the regex tries them), or -1. */
function answerColon(s: string, j: number): number {
  if ((s.charCodeAt(j) | 32) !== 97) return -1; // a
  const afterA = skipSpace(s, j + 1);
  if (s.charCodeAt(afterA) === 58) return afterA;
  for (let k = 0; k < 5; k++) if ((s.charCodeAt(j + 1 + k) | 32) !== 'nswer'.charCodeAt(k)) return -1;
  const afterAnswer = skipSpace(s, j + 6);
  return s.charCodeAt(afterAnswer) === 58 ? afterAnswer : -1;
}

/**
 * Where each `####` ends, overlapping ones included: a regex that fails at one start tries the next position, so in
 * `#####5` the match is at the second `#`.
 */
function* hashesEnds(s: string): Generator<number> {
  for (let k = s.indexOf('####'); k >= 0; k = s.indexOf('####', k + 1)) yield k + 4;
}

/**
 * Where each "the answer is" (or "the final answer is", "answer is": `marker`) ends, case-insensitive. These
 * markers cannot overlap one another, so a regex of the literal finds them all; a regex of literals only costs at
 * most their length at each position, and their quantified tails are read by hand.
 */
function* markerEnds(s: string, marker: RegExp): Generator<number> {
  for (const m of s.matchAll(marker)) yield m.index + m[0].length;
}

const THE_ANSWER_IS = /the (?:final )?answer is/gi;
const ANSWER_IS = /answer is/gi;

/**
 * The final answer a completion states, normalised, or null if it states none. Explicit markers win, in the
 * order `####`, "the answer is", `A:`; failing those, the last number in the text.
 */
export function extractAnswer(completion: string): string | null {
  const s = completion;
  const lastAfter = (starts: Iterable<number>, skip: (s: string, i: number) => number) => {
    let last: string | null = null;
    for (const at of starts) {
      const from = skip(s, at);
      const end = numberAt(s, from);
      if (end >= 0) last = s.slice(from, end);
    }
    return last;
  };
  const marked =
    lastAfter(hashesEnds(s), skipSpace) ??
    lastAfter(markerEnds(s, THE_ANSWER_IS), skipColonSpace) ??
    lastAfter(answerLines(s), (_s, i) => i);
  if (marked !== null) return normalizeNumber(marked);
  const last = lastNumber(s);
  return last === null ? null : normalizeNumber(last);
}

/**
 * The option letter of `\(?([A-E])\)?` read from `i`, with the regexes' `(?![a-z])` after it when `guarded`:
 * `)` or a non-letter must follow (the lookahead passes at a `)` the optional group gives back).
 */
function optionAt(s: string, i: number, guarded: boolean): string | null {
  if (s.charCodeAt(i) === 40) i++; // (
  const c = s.charCodeAt(i) | 32;
  if (c < 97 || c > 101) return null; // a–e
  const next = s.charCodeAt(i + 1);
  if (guarded && next !== 41 && isAsciiLetter(next)) return null;
  return s[i]!.toUpperCase();
}

/** AQUA-RAT: the option letter a completion picks (`The answer is (C)`, `#### C`, `Answer: c`), or null. */
export function extractOption(completion: string): string | null {
  const s = completion;
  const firstAfter = (starts: Iterable<number>, skip: (s: string, i: number) => number, guarded: boolean) => {
    for (const at of starts) {
      const letter = optionAt(s, skip(s, at), guarded);
      if (letter) return letter;
    }
    return null;
  };
  return (
    firstAfter(hashesEnds(s), skipSpace, false) ??
    firstAfter(markerEnds(s, ANSWER_IS), skipColonSpace, true) ??
    firstAfter(answerLines(s), (_s, i) => i, true)
  );
}

export interface Grade {
  extracted: string | null;
  correct: boolean;
}

/** Grades a completion against a gold answer: numbers compare numerically, option letters by letter. */
export function grade(completion: string, gold: string): Grade {
  if (/^[A-E]$/i.test(gold.trim())) {
    const extracted = extractOption(completion);
    return { extracted, correct: extracted !== null && extracted === gold.trim().toUpperCase() };
  }
  const extracted = extractAnswer(completion);
  const g = normalizeNumber(gold);
  return { extracted, correct: extracted !== null && g !== null && Number(extracted) === Number(g) };
}
