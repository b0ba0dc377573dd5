import { describe, expect, it } from 'vitest';
import { eventInput, findUnstorable, pgText, runCreateInput, runSetSummaryInput, sampleInput } from '../src';

const issues = (r: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }) =>
  r.success ? [] : r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);

describe('pgText and the JSON check (the schemas alone, without the API)', () => {
  it('refuses NUL and lone surrogates, keeps well-formed text', () => {
    expect(pgText.safeParse('a\u0000b').success).toBe(false);
    expect(pgText.safeParse('\ud800x').success).toBe(false);
    expect(pgText.safeParse('x\udc00').success).toBe(false);
    expect(pgText.safeParse('ok 😀 ünïcode').success).toBe(true);
  });

  it('names the field of a sample, a run, an event and a summary', () => {
    expect(issues(sampleInput.safeParse({ step: 1, questionId: 'q', prompt: 'a\u0000', completion: '' }))).toEqual([
      'prompt: must not contain a NUL character (\\u0000)',
    ]);
    expect(issues(runCreateInput.safeParse({ project: 'p', name: 'a\u0000' }))[0]).toMatch(/^name: .*NUL/);
    expect(issues(eventInput.safeParse({ runId: 'r', kind: 'k', details: { a: [{ b: 'x\u0000' }] } }))).toEqual([
      'details.a.0.b: must not contain a NUL character (\\u0000)',
    ]);
    expect(issues(runSetSummaryInput.safeParse({ id: 'r', summary: { v: 'x\ud800' } }))[0]).toMatch(
      /^summary\.v: .*surrogate/,
    );
  });

  it('walks deep JSON without overflowing, and finds keys', () => {
    let deep: unknown = 'x\u0000';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(findUnstorable(deep)?.message).toMatch(/nest deeper than 64/);
    expect(findUnstorable({ a: { ['k\u0000']: 1 } })).toEqual({
      path: ['a', 'k\u0000'],
      message: expect.stringMatching(/^a key/),
    });
    expect(findUnstorable({ a: [1, 'fine', { b: null }] })).toBeNull();
  });
});
