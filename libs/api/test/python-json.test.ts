/**
 * Bodies as Python's json module writes them (bare NaN and Infinity), read in linear time: the rewrite used to be a
 * regex whose lookbehind rescanned whitespace at every position (3 s for 40 KB of spaces, a day for 8 MB).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { parsePythonJson } from '../src/mlflow/python-json';

const LIMITS = { nonFinite: 1000, structure: 100_000, depth: 32 };
const read = (s: string) => parsePythonJson(s, LIMITS);
const MAX = 8 * 1024 * 1024 - 1024;
const fill = (head: string, unit: string, tail: string) =>
  head + unit.repeat(Math.floor((MAX - head.length - tail.length) / unit.length)) + tail;

describe('parsePythonJson', () => {
  it('reads bare NaN, Infinity and -Infinity where a value stands, as strings; strings stay as they are', async () => {
    expect(
      await read(
        '{"a": NaN, "b": [Infinity,-Infinity ,\n NaN], "c": "NaN, Infinity", "d": "x\\"NaN", "e": "\\\\", "f":NaN}',
      ),
    ).toEqual({
      a: 'NaN',
      b: ['Infinity', '-Infinity', 'NaN'],
      c: 'NaN, Infinity',
      d: 'x"NaN',
      e: '\\',
      f: 'NaN',
    });
    expect(await read('{"a": -1.5e3, "b": [true, false, null], "c": {}}')).toEqual({
      a: -1500,
      b: [true, false, null],
      c: {},
    });
  });

  it.each(['NaN', '{NaN: 1}', '{"a": NaNx}', '{"a": Nope}', '{"a": 1 NaN}', '{"a": - Infinity}', '"abc', '', '{"a":'])(
    'refuses %j as not valid JSON',
    async (text) => {
      await expect(read(text)).rejects.toThrow('request body is not valid JSON');
    },
  );

  it('refuses more bare NaN than a batch has metrics, more structure than a request has, and deep nesting', async () => {
    await expect(read(`[${'NaN,'.repeat(1000)}NaN]`)).rejects.toThrow(/more than 1000 bare NaN\/Infinity values/);
    expect(await read(`[${'NaN,'.repeat(999)}NaN]`)).toHaveLength(1000);
    await expect(read(`[${'{},'.repeat(100_000)}{}]`)).rejects.toThrow(/more than 100,000 values/);
    await expect(read(`${'['.repeat(33)}${']'.repeat(33)}`)).rejects.toThrow(/nests deeper than 32 levels/);
  });

  it('reads hostile 8 MB bodies without holding the event loop for long', async () => {
    const bodies: [string, string][] = [
      ['spaces before a NaN', fill('{"a":', ' ', 'NaN}')],
      ['bare NaN', fill('[', 'NaN,', 'NaN]')],
      ['NaN-lookalikes', fill('[', 'NaNaN', ']')],
      ['NaN inside a string', fill('{"a":"', 'NaN ', '", "b": NaN}')],
      ['escaped quotes', fill('{"a":"', '\\"', '", "b": NaN}')],
      ['backslashes', fill('{"a":"', '\\\\', '", "b": NaN}')],
      ['a run of backslashes before a quote', fill('{"a":"', '\\', '\\"}')],
      ['empty strings', fill('[', '"",', 'NaN]')],
      ['empty objects', fill('[', '{},', '{}]')],
      ['colons', fill('{"a"', ':', '1}')],
      ['closing brackets', fill('[1', ']', '')],
      ['opening brackets', fill('', '[', '')],
    ];
    const h = monitorEventLoopDelay({ resolution: 10 });
    let worst = { what: '', ms: 0 };
    h.enable();
    for (const [what, text] of bodies) {
      const t0 = performance.now();
      await read(text).catch((e: Error) => expect(e.message).toMatch(/request body/));
      const ms = performance.now() - t0;
      if (ms > worst.ms) worst = { what, ms };
    }
    h.disable();
    const max = h.max / 1e6;
    console.info(
      `[python-json] 8 MB hostile bodies: slowest ${worst.what} in ${worst.ms.toFixed(0)} ms; event loop max ${max.toFixed(1)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms`,
    );
    // the old regex: about 3 s for 40 KB of spaces, growing with the square of the length
    expect(worst.ms).toBeLessThan(1000);
    expect(max).toBeLessThan(1000);
  }, 60_000);
});
