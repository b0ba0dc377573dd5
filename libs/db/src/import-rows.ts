/**
 * What an export archive's files may hold, checked line by line before anything is written from them: an archive
 * is input from outside (a file someone was sent), so every number must be one Postgres and the charts accept
 * (finite where the column is, integers that fit their column, timestamps a Date can hold) and every string bounded.
 */
import { z, type ZodType } from 'zod';
import { TarError } from './tar';

/** A refusal of the archive's content; the message names the file, the line and the field. */
export class ImportError extends TarError {}

const INT32 = 2 ** 31 - 1;
const int32 = z
  .number()
  .int('must be an integer')
  .min(-INT32 - 1, 'must fit in 32 bits')
  .max(INT32, 'must fit in 32 bits');
const count = z.number().int('must be an integer').min(0, 'must be >= 0').max(INT32, 'must fit in 32 bits');
/** Milliseconds since the epoch, years 1 to 9999 (what a Date, the pg driver and Postgres all agree on). */
const time = z
  .number()
  .int('must be an integer (ms since the epoch)')
  .min(-62_135_596_800_000, 'must be a time in years 1 to 9999')
  .max(253_402_300_799_999, 'must be a time in years 1 to 9999');
const NON_FINITE = ['NaN', 'Infinity', '-Infinity'] as const;
/** Metric values and scores: a finite JSON number, or one of the strings the export writes for the others. */
const wireNumber = z.union([z.number(), z.enum(NON_FINITE)], {
  message: 'must be a number or one of "NaN", "Infinity", "-Infinity"',
});
const str = (max: number) => z.string().max(max, `must be at most ${max} characters`);
const id = z.string().min(1, 'must not be empty').max(64, 'must be at most 64 characters');
const obj = z.record(z.string().max(1000), z.unknown());
const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'] as const;
const ARTIFACT_KINDS = ['checkpoint', 'sample-set', 'dataset', 'report', 'other'] as const;

export const projectFile = z.object({
  format: z.string().max(100).optional(),
  project: z.object({ name: str(200).min(1, 'must not be empty'), description: str(10_000).nullish() }),
});

export const sweepLine = z.object({
  id,
  name: str(1000),
  spec: z.unknown().optional(),
  status: z.enum(STATUSES),
  created_at: time.nullish(),
});

export const runLine = z.object({
  id,
  sweep_id: id.nullish(),
  parent_run_id: id.nullish(),
  name: str(1000),
  method: str(64).min(1),
  constraint: str(64).min(1),
  config: obj.nullish(),
  config_hash: str(128).nullish(),
  seed: int32.nullish(),
  dataset_hash: str(256).nullish(),
  backend: str(64).nullish(),
  status: z.enum(STATUSES),
  summary: obj.nullish(),
  tags: z.array(str(200)).max(1000).nullish(),
  notes: str(100_000).nullish(),
  error: str(100_000).nullish(),
  created_at: time.nullish(),
  updated_at: time.nullish(),
  started_at: time.nullish(),
  finished_at: time.nullish(),
  heartbeat_at: time.nullish(),
});

export const metricLine = z.object({
  run: id,
  key: str(200).min(1, 'must not be empty'),
  step: int32,
  value: wireNumber,
  time: time.nullish(),
});

export const sampleLine = z.object({
  run: id,
  step: int32,
  split: str(64).min(1),
  question_id: str(1000),
  sample_idx: count,
  prompt: str(1_000_000),
  completion: str(1_000_000),
  extracted_answer: str(100_000).nullish(),
  gold: str(100_000).nullish(),
  correct: z.boolean().nullish(),
  score: wireNumber.nullish(),
  rank: int32.nullish(),
});

export const eventLine = z.object({
  run: id,
  kind: str(64).min(1),
  step: int32.nullish(),
  details: z.unknown().optional(),
  created_at: time.nullish(),
});

export const artifactLine = z.object({
  run: id,
  kind: z.enum(ARTIFACT_KINDS),
  name: str(1000),
  uri: str(4000),
  sha256: str(128).nullish(),
  bytes: z.number().int('must be an integer').min(0, 'must be >= 0').max(Number.MAX_SAFE_INTEGER).nullish(),
  step: int32.nullish(),
  metadata: obj.nullish(),
});

export const manifestFile = z.object({
  counts: z.object({
    runs: z.number().int().min(0),
    metrics: z.number().int().min(0),
    samples: z.number().int().min(0),
    events: z.number().int().min(0),
    artifacts: z.number().int().min(0),
    sweeps: z.number().int().min(0),
  }),
});

/** The value a wire number stands for. */
export const decodeWire = (v: number | (typeof NON_FINITE)[number]) =>
  typeof v === 'number' ? v : v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : -Infinity;

function check<T>(schema: ZodType<T>, v: unknown, where: string): T {
  const r = schema.safeParse(v);
  if (r.success) return r.data;
  const i = r.error.issues[0]!;
  throw new ImportError(`${where}: ${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`);
}

/** A whole JSON file of the archive, checked against `schema`. */
export function jsonFile<T>(schema: ZodType<T>, content: Buffer, file: string): T {
  let v: unknown;
  try {
    v = JSON.parse(content.toString('utf8'));
  } catch {
    throw new ImportError(`${file} is not valid JSON`);
  }
  return check(schema, v, file);
}

/**
 * The lines of a JSON-lines file, each parsed and checked against `schema` as it is reached (a bad line stops the
 * import there). A line over `maxLineBytes` is refused before it is decoded.
 */
export function* jsonLines<T>(schema: ZodType<T>, content: Buffer, file: string, maxLineBytes: number): Generator<T> {
  let start = 0;
  let n = 0;
  while (start < content.length) {
    let end = content.indexOf(10, start);
    if (end < 0) end = content.length;
    n++;
    if (end - start > maxLineBytes)
      throw new ImportError(`${file} line ${n} is ${end - start} bytes; lines are at most ${maxLineBytes} bytes`);
    if (end > start) {
      let v: unknown;
      try {
        v = JSON.parse(content.toString('utf8', start, end));
      } catch {
        throw new ImportError(`${file} line ${n} is not valid JSON`);
      }
      yield check(schema, v, `${file} line ${n}`);
    }
    start = end + 1;
  }
}
