import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunkHeader, decodeChunk, encodeChunk, MAX_TIME, MIN_TIME, type ChunkPoints } from '../src/metric-codec';
import { curve, type CurveKind } from '../src/metric-curves';

/** Same bits, so NaN equals NaN and -0 differs from 0. */
function sameBits(a: ArrayLike<number>, b: ArrayLike<number>) {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) expect([i, b[i]]).toEqual([i, a[i]]);
}

function roundTrip(p: ChunkPoints) {
  const d = decodeChunk(encodeChunk(p));
  sameBits(p.steps, d.steps);
  sameBits(p.times, d.times);
  sameBits(p.values, d.values);
}

const specials = [NaN, Infinity, -Infinity, -0, 0, Number.MIN_VALUE, -Number.MAX_VALUE, 5e-324, 1e308];

/** Sorted distinct int32 steps, values of any kind, ms times anywhere in the codec's range, in any order. */
const chunkArb = fc.integer({ min: 1, max: 1500 }).chain((n) =>
  fc.record({
    steps: fc
      .uniqueArray(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { minLength: n, maxLength: n })
      .map((a) => a.sort((x, y) => x - y)),
    values: fc.array(fc.oneof(fc.double(), fc.constantFrom(...specials), fc.float().map(Math.fround)), {
      minLength: n,
      maxLength: n,
    }),
    times: fc.array(fc.integer({ min: MIN_TIME, max: MAX_TIME - 1 }), { minLength: n, maxLength: n }),
  }),
);

describe('metric chunk codec', () => {
  it('refuses a payload cut short (RangeError), never reading the missing bits as zeros', () => {
    fc.assert(
      fc.property(chunkArb, fc.integer({ min: 1, max: 64 }), (p, cut) => {
        const bytes = encodeChunk(p);
        const short = bytes.subarray(0, Math.max(0, bytes.length - cut));
        expect(() => decodeChunk(short)).toThrow(RangeError);
      }),
      { numRuns: 200 },
    );
  });

  it('round-trips any points exactly (random steps, times, doubles, NaN/±Inf/-0)', () => {
    fc.assert(
      fc.property(chunkArb, (p) => roundTrip(p)),
      { numRuns: 200 },
    );
  });

  it('decodes payloads joined end to end as their points in order (a sealed chunk), and refuses them out of order', () => {
    fc.assert(
      fc.property(chunkArb, fc.integer({ min: 1, max: 5 }), (p, parts) => {
        const n = p.steps.length;
        const cuts = [0, ...Array.from({ length: parts - 1 }, (_, i) => Math.floor(((i + 1) * n) / parts)), n];
        const pieces = cuts
          .slice(1)
          .map((e, i) => ({ b: cuts[i]!, e }))
          .filter((x) => x.e > x.b)
          .map((x) =>
            encodeChunk({
              steps: p.steps.slice(x.b, x.e),
              values: p.values.slice(x.b, x.e),
              times: p.times.slice(x.b, x.e),
            }),
          );
        const d = decodeChunk(Buffer.concat(pieces));
        sameBits(p.steps, d.steps);
        sameBits(p.times, d.times);
        sameBits(p.values, d.values);
        if (pieces.length > 1) expect(() => decodeChunk(Buffer.concat([...pieces].reverse()))).toThrow(RangeError);
      }),
      { numRuns: 100 },
    );
  });

  it('round-trips the extreme times, swinging between them (the largest delta of delta)', () => {
    const times = [MIN_TIME, MAX_TIME - 1, MIN_TIME, MAX_TIME - 1, -1, 0, MIN_TIME + 1];
    roundTrip({ steps: times.map((_, i) => i), values: times.map(() => 1), times });
  });

  it('round-trips realistic curves exactly: losses, accuracies, constants, NaN, spikes, strides', () => {
    const kinds: CurveKind[] = ['loss', 'accuracy', 'lr', 'constant', 'grad-norm'];
    for (const kind of kinds)
      for (const float64 of [false, true])
        for (const stride of [1, 10])
          roundTrip(
            curve(kind, { seed: 7, from: 12_000, count: 1000, stride, float64, nanRate: 0.01, spikeRate: 0.002 }),
          );
  });

  it('keeps special values exactly in every position, including repeated and alternating', () => {
    const values = [...specials, ...specials.reverse(), NaN, NaN, -0, 0, -0, Infinity, Infinity, 1, -1];
    roundTrip({ steps: values.map((_, i) => i), values, times: values.map((_, i) => 1000 * i) });
  });

  it('refuses repeated or decreasing steps, non-integer steps and bad times', () => {
    const p =
      (steps: number[], times = steps.map(() => 0)) =>
      () =>
        encodeChunk({ steps, values: steps.map(() => 1), times });
    expect(p([1, 1])).toThrow(/strictly increase/);
    expect(p([2, 1])).toThrow(/strictly increase/);
    expect(p([0.5])).toThrow(/step/);
    expect(p([2 ** 31])).toThrow(/step/);
    expect(p([1], [MIN_TIME - 1])).toThrow(/time/);
    expect(p([1], [1.5])).toThrow(/time/);
    expect(p([1], [MAX_TIME])).toThrow(/time/);
    expect(p([])).toThrow(/at least one/);
  });

  it('computes the header: count, first/last, min/max without NaN, NaN count', () => {
    const h = chunkHeader({ steps: [3, 4, 9, 10], values: [NaN, 5, -Infinity, 2], times: [0, 0, 0, 0] });
    expect(h).toEqual({
      count: 4,
      firstStep: 3,
      lastStep: 10,
      firstValue: NaN,
      lastValue: 2,
      min: -Infinity,
      max: 5,
      nanCount: 1,
    });
    expect(chunkHeader({ steps: [1], values: [NaN], times: [0] })).toMatchObject({ min: null, max: null });
  });

  // measured 4.38 and 2.08 (plain delta + varint + float32 values: 7.0; deflate of that: 5.06 and 2.18)
  it('stores a noisy float32 loss in under 4.5 bytes a point (time jitter ±20%), an accuracy in under 2.2', () => {
    const c = curve('loss', { seed: 1, from: 0, count: 1000 });
    expect(encodeChunk(c).length / 1000).toBeLessThan(4.5);
    const acc = curve('accuracy', { seed: 1, from: 0, count: 1000 });
    expect(encodeChunk(acc).length / 1000).toBeLessThan(2.2);
  });

  // plain Gorilla keeps a spike's wide XOR window for every later value that fits in it: 5.55 bytes a point here (4.21 now)
  it('does not let one spike widen the bits of the values after it (a 4,000-point loss stays under 4.4 bytes a point)', () => {
    const c = curve('loss', { seed: 3, from: 0, count: 4000, spikeRate: 1e-3, nanRate: 1e-3 });
    expect(encodeChunk(c).length / 4000).toBeLessThan(4.4);
    sameBits(decodeChunk(encodeChunk(c)).values, c.values);
  });
});
