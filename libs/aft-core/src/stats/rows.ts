/**
 * Per-question correctness as JSON lines — `{"seed":1,"arm":"aft-detach","questionId":"q17","correct":true}` — the
 * input of `aft stats paired`. Every bad line is refused with its number; nothing is guessed.
 */
import type { CorrectnessRow } from './paired';

export class RowError extends Error {}

const MAX_TEXT = 200;

/** Parses one line (1-based `line` for messages); throws RowError naming the line and the field. */
export function parseCorrectnessRow(text: string, line: number): CorrectnessRow {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new RowError(`line ${line}: not JSON`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new RowError(`line ${line}: not a JSON object`);
  const o = v as Record<string, unknown>;
  const { seed, arm, questionId, correct } = o;
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed))
    throw new RowError(`line ${line}: seed must be an integer`);
  if (typeof arm !== 'string' || !arm || arm.length > MAX_TEXT) {
    throw new RowError(`line ${line}: arm must be a non-empty string of at most ${MAX_TEXT} characters`);
  }
  if (typeof questionId !== 'string' || !questionId || questionId.length > MAX_TEXT) {
    throw new RowError(`line ${line}: questionId must be a non-empty string of at most ${MAX_TEXT} characters`);
  }
  if (typeof correct !== 'boolean') throw new RowError(`line ${line}: correct must be true or false`);
  const extra = Object.keys(o).filter((k) => !['seed', 'arm', 'questionId', 'correct'].includes(k));
  if (extra.length) throw new RowError(`line ${line}: unknown field ${extra[0]}`);
  return { seed, arm, questionId, correct };
}

/** Parses JSON lines (blank lines skipped); a (seed, arm, questionId) given twice is refused at its second line. */
export function parseCorrectnessLines(lines: Iterable<string>): CorrectnessRow[] {
  const rows: CorrectnessRow[] = [];
  const seen = new Map<string, number>();
  let n = 0;
  for (const raw of lines) {
    n++;
    const text = raw.trim();
    if (!text) continue;
    const row = parseCorrectnessRow(text, n);
    const key = JSON.stringify([row.seed, row.arm, row.questionId]);
    const first = seen.get(key);
    if (first !== undefined) {
      throw new RowError(
        `line ${n}: seed ${row.seed}, arm ${row.arm}, question ${row.questionId} was already given on line ${first}`,
      );
    }
    seen.set(key, n);
    rows.push(row);
  }
  return rows;
}
