/**
 * The gold answer of a question the repository ships, by the id `datasets.ts` gives it (`gsm8k-test-17`,
 * `aqua-dev-3`), without TensorFlow: the server grades logged samples with it (`@aft/aft-core/gold`). Each file
 * is read once per process and data folder, the first time one of its ids is asked for; only the answers are kept.
 */
import { defaultDataDir, loadAqua, loadGsm8k } from './datasets';

/** The shipped splits and their ids: `<dataset>-<split>-<row>`, the row from 0, as datasets.ts numbers them. */
const ID = /^(gsm8k-train|gsm8k-test|aqua-dev|aqua-test)-(0|[1-9]\d{0,6})$/;

type Split = 'gsm8k-train' | 'gsm8k-test' | 'aqua-dev' | 'aqua-test';

const answers = new Map<string, readonly string[]>();

let defaultDir: string | undefined;

function load(split: Split, dataDir: string): readonly string[] {
  const problems =
    split === 'gsm8k-train' || split === 'gsm8k-test'
      ? loadGsm8k(split === 'gsm8k-train' ? 'train' : 'test', dataDir)
      : loadAqua(split === 'aqua-dev' ? 'dev' : 'test', dataDir);
  return problems.map((p) => p.answer);
}

/**
 * The gold answer of a shipped question — a number for GSM8K, an option letter for AQUA-RAT — or null when the id
 * names none (another data set, a row past the split's end). Throws when the data folder lacks the split's file.
 */
export function goldAnswer(questionId: string, dataDir?: string): string | null {
  const m = ID.exec(questionId);
  if (!m) return null;
  // resolved once: defaultDataDir walks up the directories, per row of a 20,000-row table otherwise
  dataDir ??= defaultDir ??= defaultDataDir();
  const key = `${dataDir}\0${m[1]}`;
  let golds = answers.get(key);
  if (!golds) {
    golds = load(m[1] as Split, dataDir);
    answers.set(key, golds);
  }
  return golds[Number(m[2])] ?? null;
}
