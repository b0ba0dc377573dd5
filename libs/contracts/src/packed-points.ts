/**
 * A metric batch in binary columns: what the SDK sends to metrics.log (docs/architecture.md, "The metric store",
 * Writing). JSON columns cost the server a number parse per value, a walk of the body's structure before the parse
 * and a check per entry after it, and the SDK a shortest-decimal format per value; here each column is its values'
 * bytes, base64, so a 10,000-point batch is four strings. Values are float64 as the store keeps them: NaN and
 * ±Infinity need no spelling, and what arrives is exactly what was logged.
 *
 * Every column is big-endian (as packed series, libs/contracts/src/packed-series.ts): `key` uint16 (an index into
 * `keys`), `step` int32, `value` float64, `time` float64 (ms since the epoch, an integer). `n` is the number of
 * points; each column holds exactly n entries.
 */
import { z } from 'zod';
import { base64Bytes, base64Length, bytesBase64, isCanonicalBase64 } from './base64';
import { LIMITS } from './limits';
import { metricKey } from './tracking';

export interface PackedPoints {
  keys: string[];
  n: number;
  key: string;
  step: string;
  value: string;
  time?: string;
}

/** A batch's columns as numbers (non-finite values as themselves). */
export interface PointColumnsIn {
  keys: string[];
  key: readonly number[];
  step: readonly number[];
  value: readonly number[];
  time?: readonly number[];
}

/**
 * Each column's width, how it is written and read, and what an entry of it may not be (given the number of keys);
 * steps and times are bounded as in the JSON forms, any float64 is a value.
 */
const COLUMNS = {
  key: {
    width: 2,
    write: (d: DataView, at: number, v: number) => d.setUint16(at, v),
    read: (d: DataView, at: number) => d.getUint16(at),
    problem: (v: number, keys: number) => (v < keys ? null : `key index ${v} is not an index into keys (${keys} keys)`),
  },
  step: {
    width: 4,
    write: (d: DataView, at: number, v: number) => d.setInt32(at, v),
    read: (d: DataView, at: number) => d.getInt32(at),
    problem: (v: number) => (v >= 0 ? null : `step must be >= 0, got ${v}`),
  },
  value: {
    width: 8,
    write: (d: DataView, at: number, v: number) => d.setFloat64(at, v),
    read: (d: DataView, at: number) => d.getFloat64(at),
    problem: () => null,
  },
  time: {
    width: 8,
    write: (d: DataView, at: number, v: number) => d.setFloat64(at, v),
    read: (d: DataView, at: number) => d.getFloat64(at),
    problem: (v: number) =>
      Number.isInteger(v) && v >= 0 && v <= LIMITS.maxTimeMs
        ? null
        : `time must be an integer in [0, ${LIMITS.maxTimeMs}] (ms since the epoch), got ${v}`,
  },
} as const;
type Column = keyof typeof COLUMNS;
const NAMES = Object.keys(COLUMNS) as Column[];

/** The packed form of a batch (the SDK's encoder; tests). Throws RangeError on a column of another length. */
export function packPoints(c: PointColumnsIn): PackedPoints {
  const n = c.key.length;
  const out: PackedPoints = { keys: c.keys, n, key: '', step: '', value: '' };
  for (const name of NAMES) {
    const values = c[name];
    if (!values) continue;
    if (values.length !== n) throw new RangeError(`packPoints: ${name} has ${values.length} entries, key has ${n}`);
    const { width, write } = COLUMNS[name];
    const d = new DataView(new ArrayBuffer(n * width));
    for (let i = 0; i < n; i++) write(d, i * width, values[i]!);
    out[name] = bytesBase64(new Uint8Array(d.buffer));
  }
  return out;
}

/** A column's text, bounded by the most a batch can hold (zod counts it before anything is decoded). */
const columnText = (name: Column) =>
  z
    .string()
    .max(
      base64Length(LIMITS.pointsPerBatch * COLUMNS[name].width),
      `${name} holds more than ${LIMITS.pointsPerBatch} points; split the batch`,
    );

/**
 * A column's bytes as numbers, checked whole (the one base64 spelling of exactly n entries) and entry by entry;
 * an issue names the column and the first bad entry (`packed.step.17`).
 */
function readColumn(name: Column, b64: string, n: number, keys: number, ctx: z.RefinementCtx): number[] | null {
  const { width, read, problem } = COLUMNS[name];
  const bytes = n * width;
  const issue = (message: string, at?: number) =>
    ctx.addIssue({ code: 'custom', message, path: at === undefined ? [name] : [name, at] });
  if (b64.length !== base64Length(bytes) || !isCanonicalBase64(b64)) {
    issue(`must be base64 of ${n} × ${width} bytes (${base64Length(bytes)} characters, padded)`);
    return null;
  }
  const u8 = base64Bytes(b64);
  if (u8.byteLength !== bytes) {
    issue(`holds ${u8.byteLength} bytes, not ${bytes} (${n} × ${width})`);
    return null;
  }
  const d = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const v = read(d, i * width);
    const why = problem(v, keys);
    if (why) {
      issue(why, i);
      return null;
    }
    out[i] = v;
  }
  return out;
}

export const packedPoints = z
  .object({
    keys: z.array(metricKey).min(1).max(LIMITS.keysPerBatch, `at most ${LIMITS.keysPerBatch} distinct keys per batch`),
    n: z
      .number()
      .int()
      .min(1, 'a batch holds at least one point')
      .max(LIMITS.pointsPerBatch, `a batch holds at most ${LIMITS.pointsPerBatch} points; split it`),
    key: columnText('key'),
    step: columnText('step'),
    value: columnText('value'),
    /** The server's clock for every point when absent. */
    time: columnText('time').optional(),
  })
  .transform((p, ctx): PointColumnsIn => {
    const read = (name: Column, b64: string) => readColumn(name, b64, p.n, p.keys.length, ctx);
    const key = read('key', p.key);
    const step = read('step', p.step);
    const value = read('value', p.value);
    const time = p.time === undefined ? undefined : read('time', p.time);
    if (!key || !step || !value || time === null) return z.NEVER;
    return { keys: p.keys, key, step, value, ...(time ? { time } : {}) };
  });
