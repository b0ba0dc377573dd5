/**
 * Series in binary columns: what metrics.seriesPacked returns and the dashboard draws (docs/architecture.md, "The
 * metric store", Reading). metrics.series sends each number as JSON text, which Postgres has to format (float32's
 * shortest decimal, about 2 µs a value with the guards) and the server parses and writes again; 20 series of 1,000
 * buckets are 140,000 numbers. Here each column is the values' bytes, base64: Postgres copies them (float8send) and
 * no bucket value is formatted or parsed on the way. Values are float64 as the store holds them: exact for raw
 * points, rollup buckets (1,024 to 65,536 steps) and buckets under 64 steps; buckets of 64 to 512 steps come from
 * the chunk summaries, which keep float32, and wider than 65,536 from the JSON reader (JSON's are float32 throughout).
 *
 * Every column is big-endian (network order, as Postgres' *send functions write): int32 for steps, counts and NaN
 * counts, float64 for values and wall times (ms since the epoch). A bucket's min/max are NaN when all its values
 * are NaN (null in the JSON form). `n` is the number of points or buckets.
 */
import { base64Bytes } from './base64';
import { encodeNumber, type WireNumber } from './wire';

export interface PackedRawSeries {
  runId: string;
  key: string;
  mode: 'raw';
  n: number;
  steps: string;
  values: string;
  times: string;
}

export interface PackedBucketSeries {
  runId: string;
  key: string;
  mode: 'buckets';
  width: number;
  n: number;
  steps: string;
  count: string;
  nan: string;
  min: string;
  max: string;
  first: string;
  last: string;
  /** With `withTimes`: each bucket's last point's wall time. */
  times?: string;
}

export type PackedSeries = PackedRawSeries | PackedBucketSeries;

/** A series in number columns, as metrics.series returns it (non-finite values as their strings). */
export type UnpackedSeries =
  | { runId: string; key: string; mode: 'raw'; steps: number[]; values: WireNumber[]; times: number[] }
  | {
      runId: string;
      key: string;
      mode: 'buckets';
      width: number;
      steps: number[];
      count: number[];
      nan: number[];
      min: (WireNumber | null)[];
      max: (WireNumber | null)[];
      first: WireNumber[];
      last: WireNumber[];
      times?: number[];
    };

/** Reads a column of `n` values of `size` bytes; throws when its length is not n × size (a truncated response). */
function column<T>(b64: string, n: number, size: 4 | 8, read: (d: DataView, at: number) => T, name: string): T[] {
  const u8 = base64Bytes(b64);
  const d = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  if (d.byteLength !== n * size)
    throw new RangeError(`packed series: ${name} holds ${d.byteLength} bytes, not ${n * size}`);
  const out = new Array<T>(n);
  for (let i = 0; i < n; i++) out[i] = read(d, i * size);
  return out;
}

const int = (d: DataView, at: number) => d.getInt32(at);
const float = (d: DataView, at: number) => d.getFloat64(at);
const value = (d: DataView, at: number) => encodeNumber(d.getFloat64(at));
const bound = (d: DataView, at: number) => {
  const v = d.getFloat64(at);
  return Number.isNaN(v) ? null : encodeNumber(v);
};

/** The number columns of a packed series: the same shape metrics.series sends, at the store's precision. */
export function unpackSeries(p: PackedSeries): UnpackedSeries {
  const steps = column(p.steps, p.n, 4, int, 'steps');
  if (p.mode === 'raw') {
    return {
      runId: p.runId,
      key: p.key,
      mode: 'raw',
      steps,
      values: column(p.values, p.n, 8, value, 'values'),
      times: column(p.times, p.n, 8, float, 'times'),
    };
  }
  return {
    runId: p.runId,
    key: p.key,
    mode: 'buckets',
    width: p.width,
    steps,
    count: column(p.count, p.n, 4, int, 'count'),
    nan: column(p.nan, p.n, 4, int, 'nan'),
    min: column(p.min, p.n, 8, bound, 'min'),
    max: column(p.max, p.n, 8, bound, 'max'),
    first: column(p.first, p.n, 8, value, 'first'),
    last: column(p.last, p.n, 8, value, 'last'),
    ...(p.times !== undefined ? { times: column(p.times, p.n, 8, float, 'times') } : {}),
  };
}
