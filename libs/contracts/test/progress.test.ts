import { describe, expect, it } from 'vitest';
import { PROGRESS_KEYS, progressOf, progressSummary } from '../src';

describe('run progress in the summary', () => {
  it('reads back what the worker writes, only while the run runs', () => {
    const summary = {
      'test/task_accuracy': 0.4,
      ...progressSummary({ step: 40, total: 120, etaSeconds: 17, phase: 'train' }),
    };
    expect(progressOf(summary, 'running')).toEqual({ step: 40, total: 120, etaSeconds: 17, phase: 'train' });
    expect(progressOf(summary, 'succeeded')).toBeNull();
  });

  it('tolerates what an older worker or a hand-written summary left: no ETA, an unknown phase, no total', () => {
    expect(
      progressOf({ [PROGRESS_KEYS.step]: 3, [PROGRESS_KEYS.total]: 9, [PROGRESS_KEYS.phase]: 'x' }, 'running'),
    ).toEqual({
      step: 3,
      total: 9,
      etaSeconds: null,
      phase: 'train',
    });
    expect(progressOf({ [PROGRESS_KEYS.step]: 3 }, 'running')).toBeNull();
  });
});
