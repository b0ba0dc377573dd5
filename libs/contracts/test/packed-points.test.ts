import { describe, expect, it } from 'vitest';
import { LIMITS, metricsLogInput, packedPoints, packPoints, type PackedPoints } from '../src';

const cols = {
  keys: ['loss', 'acc'],
  key: [0, 1, 0, 1, 0, 0, 0],
  step: [0, 0, 1, 1, 2, 3, LIMITS.maxStep],
  value: [0.1 + 0.2, -0, NaN, Infinity, -Infinity, Number.MAX_VALUE, 5e-324],
  time: [0, 1, 1_700_000_000_123, 2, 3, 4, LIMITS.maxTimeMs],
};

/** The first issue's path and message, or null when the batch is accepted. */
function refusal(p: unknown): string | null {
  const r = packedPoints.safeParse(p);
  return r.success ? null : `${r.error.issues[0]!.path.join('.')}: ${r.error.issues[0]!.message}`;
}

/** `p` with column `name` replaced by the base64 of `bytes`. */
const withBytes = (p: PackedPoints, name: 'key' | 'step' | 'value' | 'time', bytes: Uint8Array) => ({
  ...p,
  [name]: Buffer.from(bytes).toString('base64'),
});
const be = (n: number, put: (d: DataView, i: number) => void, width: number) => {
  const d = new DataView(new ArrayBuffer(n * width));
  for (let i = 0; i < n; i++) put(d, i);
  return new Uint8Array(d.buffer);
};

describe('packed metric batches', () => {
  it('round-trips every float64 exactly (NaN, ±Infinity, -0, the extremes) with steps and times', () => {
    const out = packedPoints.parse(packPoints(cols));
    expect(out.keys).toEqual(cols.keys);
    expect(out.key).toEqual(cols.key);
    expect(out.step).toEqual(cols.step);
    expect(out.time).toEqual(cols.time);
    expect(out.value.map((v) => (Object.is(v, -0) ? '-0' : String(v)))).toEqual(
      cols.value.map((v) => (Object.is(v, -0) ? '-0' : String(v))),
    );
  });

  it('is big-endian, as the packed series are', () => {
    const p = packPoints({ keys: ['a'], key: [0], step: [258], value: [1] });
    expect([...Buffer.from(p.step, 'base64')]).toEqual([0, 0, 1, 2]);
    expect([...Buffer.from(p.value, 'base64')]).toEqual([0x3f, 0xf0, 0, 0, 0, 0, 0, 0]);
    expect(p.time).toBeUndefined();
    expect(packedPoints.parse(p).time).toBeUndefined();
  });

  it('names the column and the entry it refuses', () => {
    const p = packPoints({ keys: ['a', 'b'], key: [0, 1, 1], step: [1, 2, 3], value: [1, 2, 3], time: [1, 2, 3] });
    expect(refusal(p)).toBeNull();
    expect(
      refusal(
        withBytes(
          p,
          'key',
          be(3, (d, i) => d.setUint16(i * 2, i), 2),
        ),
      ),
    ).toBe('key.2: key index 2 is not an index into keys (2 keys)');
    expect(
      refusal(
        withBytes(
          p,
          'step',
          be(3, (d, i) => d.setInt32(i * 4, i === 1 ? -5 : i), 4),
        ),
      ),
    ).toBe('step.1: step must be >= 0, got -5');
    for (const bad of [1.5, -1, NaN, LIMITS.maxTimeMs + 1, Infinity]) {
      expect(
        refusal(
          withBytes(
            p,
            'time',
            be(3, (d, i) => d.setFloat64(i * 8, i === 2 ? bad : i), 8),
          ),
        ),
      ).toBe(`time.2: time must be an integer in [0, ${LIMITS.maxTimeMs}] (ms since the epoch), got ${bad}`);
    }
  });

  it('refuses a column whose length is not n entries, or that is not base64, naming it', () => {
    const p = packPoints({ keys: ['a'], key: [0, 0], step: [1, 2], value: [1, 2] });
    expect(refusal({ ...p, n: 5 })).toBe('key: must be base64 of 5 × 2 bytes (16 characters, padded)');
    // as long in base64 as 3 entries would be, but not 3 entries' bytes
    expect(refusal({ ...p, n: 3 })).toBe('key: holds 4 bytes, not 6 (3 × 2)');
    expect(refusal(withBytes(p, 'value', new Uint8Array(15)))).toMatch(/^value: must be base64 of 2 × 8 bytes/);
    // the right length, but characters Buffer would skip over: refused, not read as fewer bytes
    const spaced = `${p.step.slice(0, 3)} ${p.step.slice(4)}`;
    expect(spaced).toHaveLength(p.step.length);
    expect(refusal({ ...p, step: spaced })).toMatch(/^step: must be base64/);
    expect(refusal({ ...p, step: p.step.replace(/.$/, '!') })).toMatch(/^step: must be base64/);
    // bits past the data that are not zero: another spelling of the same bytes (Buffer would read AAF= as AAE=)
    const one = packPoints({ keys: ['a'], key: [0], step: [1], value: [1] });
    expect(one.key).toBe('AAA=');
    expect(refusal({ ...one, key: 'AAB=' })).toMatch(/^key: must be base64 of 1 × 2 bytes/);
    expect(refusal({ ...one, step: 'AAAAAR==' })).toMatch(/^step: must be base64 of 1 × 4 bytes/);
    expect(refusal({ ...one, step: 'AAAAAQ==' })).toBeNull();
  });

  it('bounds the batch before decoding anything: points, keys, column text, key names', () => {
    const p = packPoints({ keys: ['a'], key: [0], step: [1], value: [1] });
    expect(refusal({ ...p, n: 0 })).toBe('n: a batch holds at least one point');
    expect(refusal({ ...p, n: LIMITS.pointsPerBatch + 1 })).toMatch(/^n: a batch holds at most 10000 points/);
    expect(refusal({ ...p, value: 'A'.repeat(20 * LIMITS.pointsPerBatch) })).toMatch(
      /^value: value holds more than 10000 points/,
    );
    const keys = Array.from({ length: LIMITS.keysPerBatch + 1 }, (_, i) => `k${i}`);
    expect(refusal({ ...p, keys })).toMatch(/^keys: at most 1000 distinct keys/);
    expect(refusal({ ...p, keys: ['bad\u0000key'] })).toMatch(/^keys\.0: a metric key may hold/);
  });

  it('is one of the three forms metrics.log takes, never two', () => {
    const packed = packPoints({ keys: ['a'], key: [0], step: [1], value: [1] });
    expect(metricsLogInput.safeParse({ runId: 'r1', packed }).success).toBe(true);
    const both = metricsLogInput.safeParse({ runId: 'r1', packed, points: [{ key: 'a', step: 1, value: 1 }] });
    expect(both.success).toBe(false);
    expect(both.error?.issues[0]?.message).toMatch(/in one form/);
  });

  it('packs a full batch in well under the JSON columns’ bytes', () => {
    const n = LIMITS.pointsPerBatch;
    const big = {
      keys: ['loss'],
      key: Array.from({ length: n }, () => 0),
      step: Array.from({ length: n }, (_, i) => i),
      value: Array.from({ length: n }, (_, i) => Math.exp(-i / 1000) + Math.sin(i) / 100),
      time: Array.from({ length: n }, (_, i) => 1_700_000_000_000 + i * 137),
    };
    const packed = JSON.stringify(packPoints(big));
    expect(packed.length).toBeLessThan(0.9 * JSON.stringify(big).length);
    expect(packedPoints.parse(JSON.parse(packed)).value).toEqual(big.value);
  });
});
