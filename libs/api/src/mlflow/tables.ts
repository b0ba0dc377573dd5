/**
 * Generations logged through MLflow as a table: `mlflow.log_table(data, artifact_file="….json")` uploads the
 * pandas frame as `{"columns": [...], "data": [[...], ...]}` (`to_json(orient="split")`) through the artifact proxy.
 * A `.json` upload of that shape whose columns include `question_id` and `completion` is read as samples, one per
 * row, validated as `samples.log` validates them and graded (../grading.ts); artifacts.ts stores them in the
 * transaction that stores the file, so the file and its samples are kept together or not at all.
 *
 * Columns are the sample fields in snake case; any others are left in the file. Defaults pair an external run with
 * the platform's own: split `test/greedy` (the outcome split of greedy decoding, libs/contracts/src/outcomes.ts),
 * step 0, an empty prompt, and a sample index counting the rows of a question in order from 0. `log_table` on a file that exists
 * re-uploads it with the new rows after the old ones, so the old rows keep their indices and are not stored twice.
 */
import { decodeNumber, sampleInput } from '@aft/contracts';
import type { StoredSample } from '@aft/db';
import { gradeSamples } from '../grading';
import { parsePythonJson, PythonJsonError } from './python-json';
import { bad, MlflowError, type Ctx } from './wire';

/** Rows one upload may hold: GSM8K's test split with 8 samples a question is 10,552 rows. */
export const TABLE_MAX_ROWS = 20_000;
/**
 * Commas, colons and brackets one table may hold (as the tRPC body limit): JSON.parse holds the event loop for
 * about a second on a few million of them. 20,000 rows of up to 20 columns fit.
 */
export const TABLE_MAX_VALUES = 500_000;

/** The sample fields a table may give, by column name. */
const COLUMNS = {
  question_id: 'questionId',
  completion: 'completion',
  prompt: 'prompt',
  split: 'split',
  step: 'step',
  sample_idx: 'sampleIdx',
  correct: 'correct',
  score: 'score',
  rank: 'rank',
  gold: 'gold',
  extracted_answer: 'extractedAnswer',
} as const;
type Column = keyof typeof COLUMNS;
const COLUMN_OF = Object.fromEntries(Object.entries(COLUMNS).map(([c, f]) => [f, c])) as Record<string, Column>;

const isColumn = (c: unknown): c is Column => typeof c === 'string' && Object.hasOwn(COLUMNS, c);

/**
 * The graded samples a `log_table` upload holds, or null when the file is not such a table (it is then stored as
 * any other artifact). A table with a bad row is refused as a whole: a 400 naming the row and the column.
 */
export async function sampleTable(ctx: Ctx, rel: string, body: Buffer): Promise<StoredSample[] | null> {
  // cheap checks first: most uploads are not tables of generations and are never parsed
  if (!rel.toLowerCase().endsWith('.json')) return null;
  if (!['"columns"', '"question_id"', '"completion"'].every((s) => body.includes(s))) return null;
  const refuse = (why: string) => bad(`sample table '${rel}': ${why}`);
  let table: unknown;
  try {
    table = await parsePythonJson(body.toString('utf8'), {
      nonFinite: TABLE_MAX_VALUES,
      structure: TABLE_MAX_VALUES,
      depth: 16,
    });
  } catch (e) {
    if (!(e instanceof PythonJsonError)) throw e;
    // it names the columns of one; a client meaning a plain file can give it another extension
    const why = e.message.replace('request body', 'the file').replace('no valid request has', 'a table holds at most');
    throw refuse(`it names the columns question_id and completion but is not mlflow.log_table's JSON: ${why}`);
  }
  if (!table || typeof table !== 'object' || Array.isArray(table)) return null;
  const { columns, data } = table as { columns?: unknown; data?: unknown };
  if (!Array.isArray(columns) || !columns.includes('question_id') || !columns.includes('completion')) return null;
  if (!Array.isArray(data)) throw refuse('data must be a list of rows');
  if (data.length > TABLE_MAX_ROWS) {
    throw refuse(
      `it holds ${data.length.toLocaleString('en-US')} rows; at most ${TABLE_MAX_ROWS.toLocaleString('en-US')} a file — log the rest to another artifact_file`,
    );
  }
  const at = new Map<Column, number>();
  columns.forEach((c, i) => {
    if (!isColumn(c)) return;
    if (at.has(c)) throw refuse(`the column ${c} appears twice`);
    at.set(c, i);
  });
  const nextIdx = new Map<string, number>();
  const rows = data.map((row, i): StoredSample => {
    if (!Array.isArray(row) || row.length !== columns.length) {
      throw refuse(`data[${i}] must be a list of ${columns.length} cells, one for each column`);
    }
    const sample: Record<string, unknown> = { split: 'test/greedy', step: 0, prompt: '' };
    for (const [c, j] of at) {
      // pandas writes a missing value as null: the field's default, where it has one
      if (row[j] !== null || c === 'question_id' || c === 'completion') sample[COLUMNS[c]] = row[j];
    }
    const parsed = sampleInput.safeParse(sample);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = String(issue.path[0] ?? '');
      throw refuse(`data[${i}], column ${COLUMN_OF[field] ?? field}: ${issue.message}`);
    }
    const r = parsed.data;
    if (sample['sampleIdx'] === undefined) {
      const key = JSON.stringify([r.step, r.split, r.questionId]);
      r.sampleIdx = nextIdx.get(key) ?? 0;
      nextIdx.set(key, r.sampleIdx + 1);
    }
    return { ...r, score: r.score === null || r.score === undefined ? null : decodeNumber(r.score) };
  });
  // charged once the table is known good: a refused one costs its sender nothing
  await chargeRows(ctx, data.length);
  return gradeSamples(rows);
}

/**
 * Charges the rows to the key's ingestion rate as `samples.log` charges samples, before anything is written; fails
 * open, like handler.ts's chargeWrite (which charges the other MLflow writes).
 */
async function chargeRows(ctx: Ctx, n: number) {
  if (!ctx.opts.rateLimiter || !ctx.actor.keyId || n === 0) return;
  const r = await ctx.opts.rateLimiter.take(ctx.actor.keyId, n).catch(() => ({ ok: true as const }));
  if (!r.ok) {
    throw new MlflowError(
      'REQUEST_LIMIT_EXCEEDED',
      `this API key is over its ingestion rate; retry after ${r.retryAfterS} s`,
      429,
      { 'retry-after': String(r.retryAfterS) },
    );
  }
}
