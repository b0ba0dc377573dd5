/**
 * GSM8K and AQUA-RAT, shipped in the repository's `data/` (see its README, licences and checksums) — never
 * downloaded. GSM8K's test split is kept
 * out of every training set: `trainingProblems` reads only train.jsonl and refuses a question that also appears in
 * test.jsonl. AQUA-RAT (dev and test only here) is for out-of-distribution evaluation.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ReasoningProblem {
  id: string;
  dataset: 'gsm8k' | 'aqua';
  question: string;
  /** The reference chain of thought, ending with `#### answer`. */
  reference: string;
  /** GSM8K: a number; AQUA: an option letter. */
  answer: string;
}

/**
 * The data folder: $AFT_DATA_DIR, else the repository's own `data/`. Found from `import.meta.url`: the web app's
 * bundler (Turbopack) gives a module its URL but not `import.meta.dirname`, and the server grades samples with it.
 */
export function defaultDataDir(): string {
  const fromEnv = process.env['AFT_DATA_DIR'];
  if (fromEnv) return resolve(fromEnv);
  let dir = dirname(fileURLToPath(import.meta.url));
  while (dir !== dirname(dir)) {
    if (existsSync(join(dir, 'nx.json'))) return resolve(dir, 'data');
    dir = dirname(dir);
  }
  return resolve('data');
}

function readJsonl(path: string): unknown[] {
  if (!existsSync(path))
    throw new Error(`${path} not found: the data sets are read from the repository's data/ (or AFT_DATA_DIR)`);
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l, i) => {
      try {
        return JSON.parse(l);
      } catch {
        throw new Error(`${path}:${i + 1} is not JSON`);
      }
    });
}

/** GSM8K's gold: the text after `####`, without thousands separators. */
export function gsm8kGold(answer: string): string {
  const m = answer.match(/####\s*(.+)\s*$/);
  if (!m) throw new Error('a GSM8K answer without a #### line');
  return m[1]!.replace(/,/g, '').trim();
}

export function loadGsm8k(split: 'train' | 'test', dataDir = defaultDataDir()): ReasoningProblem[] {
  return readJsonl(join(dataDir, 'gsm8k', `${split}.jsonl`)).map((row, i) => {
    const r = row as { question: string; answer: string };
    // calculator annotations <<48/2=24>> are tool output, not reasoning
    const reference = r.answer.replace(/<<[^>]*>>/g, '').replace(/####\s*/, '#### ');
    return {
      id: `gsm8k-${split}-${i}`,
      dataset: 'gsm8k',
      question: r.question,
      reference,
      answer: gsm8kGold(r.answer),
    };
  });
}

export function loadAqua(split: 'dev' | 'test', dataDir = defaultDataDir()): ReasoningProblem[] {
  return readJsonl(join(dataDir, 'aqua_rat', `${split}.json`)).map((row, i) => {
    const r = row as { question: string; options: string[]; rationale: string; correct: string };
    return {
      id: `aqua-${split}-${i}`,
      dataset: 'aqua',
      question: `${r.question}\nOptions: ${r.options.join(' ')}`,
      reference: `${r.rationale.trim()}\n#### ${r.correct}`,
      answer: r.correct,
    };
  });
}

/** GSM8K training problems, guaranteed disjoint from GSM8K test. */
export function trainingProblems(dataDir = defaultDataDir()): ReasoningProblem[] {
  const test = new Set(loadGsm8k('test', dataDir).map((p) => p.question.trim()));
  const train = loadGsm8k('train', dataDir);
  const leak = train.filter((p) => test.has(p.question.trim()));
  if (leak.length)
    throw new Error(`${leak.length} GSM8K test questions found in the training data; refusing to train on them`);
  return train;
}
