/**
 * Chunk summaries (docs/architecture.md, "The metric store"): per 64-step aligned sub-bucket of a chunk, its count,
 * NaN count, min, max, first and last value and the steps of the first and last. A series read at a bucket width of
 * 64 to 512 steps merges these instead of decoding the points: 16 entries for a 1,000-point chunk instead of 1,000
 * points, at about 0.3 bytes a point — where rollup rows at those widths cost 4.8 (bench:scale, 10M points).
 *
 * Layout per non-empty sub-bucket, in step order: a varint holding the bucket delta (the first from floor(first
 * step / 64)) and two shape bits — the bucket is full (first and last step at its edges: their offsets are left
 * out) and it holds no NaN (its NaN count is left out) — then the offsets, count and NaN count as needed, a flags
 * byte and the values. Bucket values travel as float32 (series.ts), so min, max, first and last are kept at
 * float32 wherever the wire would round them so (float64 only outside float32's range, where it sends them whole);
 * first/last are "same as min/max" when equal; min/max are absent when every value is NaN. Exact on the wire: a
 * series from summaries is the same JSON as one from the points (tests compare them).
 */
export const SUMMARY_WIDTH = 64;

/** Aggregates of one sub-bucket (or, after merging, of one bucket); steps and values exact. */
export interface SubBucket {
  /** floor(step / SUMMARY_WIDTH) — or, after merging, floor(step / width). */
  b: number;
  count: number;
  nan: number;
  min: number | null;
  max: number | null;
  first: number;
  last: number;
  /** Steps of the first and last point. */
  fs: number;
  ls: number;
}

const F64 = 0;
const F32 = 1;
const NONE = 2; // min/max: every value NaN
const IS_MIN = 2; // first/last: equal to min
const IS_MAX = 3; // first/last: equal to max

class ByteWriter {
  buf = new Uint8Array(256);
  view = new DataView(this.buf.buffer);
  len = 0;
  private room(n: number) {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  byte(v: number) {
    this.room(1);
    this.buf[this.len++] = v;
  }
  varint(v: number) {
    while (v >= 0x80) {
      this.byte((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.byte(v);
  }
  f32(v: number) {
    this.room(4);
    this.view.setFloat32(this.len, v, true);
    this.len += 4;
  }
  f64(v: number) {
    this.room(8);
    this.view.setFloat64(this.len, v, true);
    this.len += 8;
  }
}

/**
 * Whether a value is sent as float32 (series-narrow.ts f4: 0, or a magnitude from 1.2e-38 to 3.4e38), or is a
 * float32 already (±Infinity, NaN, a float32 metric): then float32 keeps all the wire shows of it.
 */
const onWireAsF32 = (v: number) => v === 0 || (Math.abs(v) >= 1.2e-38 && Math.abs(v) <= 3.4e38);
// the rounded value must be one the wire rounds too: 1.2e-38 itself rounds to a float32 just under the bound
const asF32 = (v: number) =>
  Number.isNaN(v) || Object.is(Math.fround(v), v) || (onWireAsF32(v) && onWireAsF32(Math.fround(v)));
/** A value as the summary keeps it. */
const kept = (v: number) => (asF32(v) ? Math.fround(v) : v);

function valueCode(v: number, min: number | null, max: number | null): number {
  if (min !== null && Object.is(kept(v), kept(min))) return IS_MIN;
  if (max !== null && Object.is(kept(v), kept(max))) return IS_MAX;
  return asF32(v) ? F32 : F64;
}

/**
 * Sub-buckets must hold this many points on average for a chunk to get a summary: sparser steps (an eval every
 * 10 steps) would make it bigger than the points, and decoding few points costs little.
 */
export const SUMMARY_MIN_FILL = 16;

/** The summary of points whose steps strictly increase; empty when they are too sparse to be worth one. */
export function encodeSummary(steps: ArrayLike<number>, values: ArrayLike<number>): Buffer {
  const n = steps.length;
  let occupied = 1;
  for (let i = 1; i < n; i++)
    if (Math.floor(steps[i]! / SUMMARY_WIDTH) !== Math.floor(steps[i - 1]! / SUMMARY_WIDTH)) occupied++;
  if (n < SUMMARY_MIN_FILL * occupied) return Buffer.alloc(0);
  const subs: SubBucket[] = [];
  let i = 0;
  while (i < n) {
    const b = Math.floor(steps[i]! / SUMMARY_WIDTH);
    let j = i;
    let nan = 0;
    let min: number | null = null;
    let max: number | null = null;
    while (j < n && Math.floor(steps[j]! / SUMMARY_WIDTH) === b) {
      const v = values[j]!;
      if (Number.isNaN(v)) nan++;
      else {
        // Object.is keeps -0 below 0, as Postgres' min over float8 does not; either is a correct minimum of equal values
        if (min === null || v < min) min = v;
        if (max === null || v > max) max = v;
      }
      j++;
    }
    subs.push({
      b,
      count: j - i,
      nan,
      min,
      max,
      first: values[i]!,
      last: values[j - 1]!,
      fs: steps[i]!,
      ls: steps[j - 1]!,
    });
    i = j;
  }
  return writeSummary(subs);
}

/**
 * The summary of chunks joined end to end (a sealed chunk, metric-seal.ts), from theirs: a sub-bucket two of them
 * share is merged. Null when one of them has none (too sparse, or stored before summaries): then the points decide.
 */
export function joinSummaries(parts: readonly { summary: Uint8Array | null; firstStep: number }[]): Buffer | null {
  const subs: SubBucket[] = [];
  for (const part of parts) {
    if (!part.summary?.length) return null;
    readSummary(part.summary, part.firstStep, -Infinity, Infinity, (x) => {
      const prev = subs.at(-1);
      if (prev?.b !== x.b) return void subs.push({ ...x });
      prev.count += x.count;
      prev.nan += x.nan;
      if (x.min !== null && (prev.min === null || x.min < prev.min)) prev.min = x.min;
      if (x.max !== null && (prev.max === null || x.max > prev.max)) prev.max = x.max;
      prev.last = x.last;
      prev.ls = x.ls;
    });
  }
  return writeSummary(subs);
}

function writeSummary(subs: readonly SubBucket[]): Buffer {
  const w = new ByteWriter();
  let prevBucket = subs[0]?.b ?? 0;
  for (const { b, count, nan, min, max, first, last, fs: firstStep, ls: lastStep } of subs) {
    const codes = [
      min === null ? NONE : asF32(min) ? F32 : F64,
      max === null ? NONE : asF32(max) ? F32 : F64,
      valueCode(first, min, max),
      valueCode(last, min, max),
    ];
    const fs = firstStep - b * SUMMARY_WIDTH;
    const ls = lastStep - b * SUMMARY_WIDTH;
    const full = fs === 0 && ls === SUMMARY_WIDTH - 1;
    w.varint((b - prevBucket) * 4 + (full ? 1 : 0) + (nan === 0 ? 2 : 0));
    if (!full) {
      w.byte(fs);
      w.byte(ls);
    }
    w.varint(count);
    if (nan) w.varint(nan);
    w.byte(codes[0]! | (codes[1]! << 2) | (codes[2]! << 4) | (codes[3]! << 6));
    [min, max, first, last].forEach((v, k) => {
      if (codes[k] === F32) w.f32(v!);
      else if (codes[k] === F64) w.f64(v!);
    });
    prevBucket = b;
  }
  return Buffer.from(w.buf.buffer, 0, w.len);
}

/**
 * Calls `visit` with each sub-bucket of a chunk's summary whose steps lie in [lo, hi] (the caller's range is in
 * whole sub-buckets, so a sub-bucket is either in it or out of it), in step order.
 */
export function readSummary(
  summary: Uint8Array,
  firstStep: number,
  lo: number,
  hi: number,
  visit: (s: SubBucket) => void,
): void {
  const view = new DataView(summary.buffer, summary.byteOffset, summary.byteLength);
  let p = 0;
  const varint = () => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const byte = summary[p++]!;
      v += (byte & 0x7f) * mul;
      if (byte < 0x80) return v;
      mul *= 0x80;
    }
  };
  const float = (code: number): number =>
    code === F32 ? view.getFloat32((p += 4) - 4, true) : view.getFloat64((p += 8) - 8, true);
  const bound = (code: number) => (code === NONE ? null : float(code));
  const value = (code: number, min: number | null, max: number | null) =>
    code === IS_MIN ? min! : code === IS_MAX ? max! : float(code);
  let b = Math.floor(firstStep / SUMMARY_WIDTH);
  while (p < summary.length) {
    const head = varint();
    b += Math.floor(head / 4);
    const full = (head & 1) === 1;
    const fs = b * SUMMARY_WIDTH + (full ? 0 : summary[p++]!);
    const ls = b * SUMMARY_WIDTH + (full ? SUMMARY_WIDTH - 1 : summary[p++]!);
    const count = varint();
    const nan = head & 2 ? 0 : varint();
    const flags = summary[p++]!;
    const min = bound(flags & 3);
    const max = bound((flags >> 2) & 3);
    const first = value((flags >> 4) & 3, min, max);
    const last = value((flags >> 6) & 3, min, max);
    if (ls < lo) continue;
    if (fs > hi) return;
    visit({ b, count, nan, min, max, first, last, fs, ls });
  }
}
