/**
 * The results table names and orders methods and constraints as the training vocabulary (`@aft/aft-core/spec`)
 * does. The checks loop over the spec, so a method added there is labelled and placed with nothing to add here.
 */
import { ALIGN_METHODS, CONSTRAINTS, isRankingMethod, METHOD_LABELS } from '@aft/aft-core/spec';
import { describe, expect, it } from 'vitest';
import { groupOf, resultRows, type ResultRun } from '../src/lib/results';

const run = (method: string, constraint: string, parentRunId: string | null = 'parent'): ResultRun => ({
  id: `${method}-${constraint}-${parentRunId}`,
  name: method,
  method,
  constraint,
  config: {},
  seed: 1,
  status: 'succeeded',
  summary: {},
  parentRunId,
});

describe('the results table and the spec', () => {
  it.each(ALIGN_METHODS)('labels %s with its spec label, and its constraint only when it is a ranking method', (m) => {
    const g = groupOf(run(m, 'detach'));
    expect(g.label).toBe(isRankingMethod(m) ? `${METHOD_LABELS[m]} detach` : METHOD_LABELS[m]);
    expect(g.constraint).toBe(isRankingMethod(m) ? 'detach' : 'none');
  });

  it('orders the VFT parent first, then the methods and constraints in the spec order', () => {
    const runs = ALIGN_METHODS.flatMap((m) => CONSTRAINTS.map((c) => run(m, c)));
    // a method the spec does not know (logged through the SDK) comes after all of the spec's
    const rows = resultRows([run('a-logged-method', 'none'), ...runs].reverse().concat(run('vft', 'none', null)));
    const expected = ALIGN_METHODS.flatMap((m) =>
      isRankingMethod(m) ? CONSTRAINTS.map((c) => [m, c]) : [[m, 'none']],
    );
    expect(rows.map((r) => [r.method, r.constraint])).toEqual([
      ['vft-parent', 'none'],
      ...expected,
      ['a-logged-method', 'none'],
    ]);
  });
});
