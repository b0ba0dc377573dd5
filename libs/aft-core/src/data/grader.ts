/**
 * Final-answer extraction and grading, shared by the trainer, the labeller and `aft grade`. It reads what
 * models actually write: `#### 72`, `A: 72`, `The answer is 72.`, `$1,200`, `72 dollars`, trailing punctuation,
 * and AQUA-style option letters.
 */

const NUM = /-?\$?\s*\d[\d,]*(?:\.\d+)?/;

/** Canonical numeric form: no thousands separators or currency, no trailing zeros (`1,200.50` → `1200.5`). */
export function normalizeNumber(s: string): string | null {
  const cleaned = s.replace(/[$,\s]/g, '').replace(/\.$/, '');
  if (!/^-?\d+(\.\d+)?$/.test(cleaned)) return null;
  const n = Number(cleaned);
  if (!Number.isFinite(n)) return null;
  return String(n);
}

const PATTERNS: RegExp[] = [
  /####\s*(-?\$?\s*\d[\d,]*(?:\.\d+)?)/,
  /the (?:final )?answer is[:\s]*(-?\$?\s*\d[\d,]*(?:\.\d+)?)/i,
  /(?:^|\n)\s*(?:A|Answer)\s*:\s*(-?\$?\s*\d[\d,]*(?:\.\d+)?)/i,
];

/**
 * The final answer a completion states, normalised, or null if it states none. Explicit markers win, in the
 * order `####`, "the answer is", `A:`; failing those, the last number in the text.
 */
export function extractAnswer(completion: string): string | null {
  for (const re of PATTERNS) {
    const all = [...completion.matchAll(new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`))];
    const m = all[all.length - 1];
    if (m?.[1]) return normalizeNumber(m[1]);
  }
  const nums = completion.match(new RegExp(NUM.source, 'g'));
  const last = nums?.[nums.length - 1];
  return last ? normalizeNumber(last) : null;
}

/** AQUA-RAT: the option letter a completion picks (`The answer is (C)`, `#### C`, `Answer: c`), or null. */
export function extractOption(completion: string): string | null {
  const m =
    completion.match(/####\s*\(?([A-E])\)?/i) ??
    completion.match(/answer is[:\s]*\(?([A-E])\)?(?![a-z])/i) ??
    completion.match(/(?:^|\n)\s*(?:A|Answer)\s*:\s*\(?([A-E])\)?(?![a-z])/i);
  return m?.[1]?.toUpperCase() ?? null;
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
