import { describe, expect, it } from 'vitest';
import {
  keyMatcher,
  metricSections,
  parseCollapsed,
  sectionOf,
  toggleCollapsed,
  MAX_FILTER,
} from '../src/lib/metric-sections';

const KEYS = [
  'dist/negative_p10',
  'dist/boundary',
  'dist/positive_p90',
  'dist/positive_p50',
  'dist/negative_p50',
  'eval/accuracy',
  'sys/cpu',
  'zeta/x',
  'custom/foo',
  'epoch',
  'boundary/belowFraction',
  'test/malformed_rate',
  'test/task_accuracy',
  'val/ref_perplexity',
  'val/assessment_accuracy',
  'val/task_accuracy',
  'train/lr',
  'train/loss/nll',
  'train/grad_norm',
  'train/loss',
  'progress/step',
];
const grouped = (filter = '') => metricSections(KEYS, (k) => k, filter).map((s) => [s.id, s.items] as const);

describe('metricSections', () => {
  it('puts train, val, test first, then boundary, dist, sys, then other prefixes, then unprefixed keys', () => {
    expect(grouped().map(([id]) => id)).toEqual([
      'train',
      'val',
      'test',
      'boundary',
      'dist',
      'sys',
      'custom',
      'eval',
      'zeta',
      'other',
    ]);
  });

  it('orders the keys a person reads first before the rest, the rest alphabetically (numbers by value)', () => {
    const s = Object.fromEntries(grouped());
    expect(s.train).toEqual(['train/loss', 'train/loss/nll', 'train/grad_norm', 'train/lr']);
    expect(s.val).toEqual(['val/task_accuracy', 'val/assessment_accuracy', 'val/ref_perplexity']);
    expect(s.test).toEqual(['test/task_accuracy', 'test/malformed_rate']);
    expect(s.dist).toEqual([
      'dist/positive_p50',
      'dist/negative_p50',
      'dist/boundary',
      'dist/negative_p10',
      'dist/positive_p90',
    ]);
    expect(s.other).toEqual(['epoch']);
    expect(metricSections(['x/p10', 'x/p5', 'x/p50'], (k) => k)[0]!.items).toEqual(['x/p5', 'x/p10', 'x/p50']);
  });

  it('hides progress keys and keeps only what the filter matches, dropping empty sections', () => {
    expect(grouped().flatMap(([, items]) => items)).not.toContain('progress/step');
    expect(grouped('ACCURACY')).toEqual([
      ['val', ['val/task_accuracy', 'val/assessment_accuracy']],
      ['test', ['test/task_accuracy']],
      ['eval', ['eval/accuracy']],
    ]);
    expect(grouped('dist/*p50')).toEqual([['dist', ['dist/positive_p50', 'dist/negative_p50']]]);
    expect(grouped('no such key')).toEqual([]);
  });

  it('works on items, not only strings', () => {
    const items = [{ key: 'sys/gpu' }, { key: 'train/loss' }];
    expect(metricSections(items, (m) => m.key).map((s) => s.items[0])).toEqual([items[1], items[0]]);
  });
});

describe('sectionOf', () => {
  it('is the first path segment, or other', () => {
    expect(sectionOf('train/loss/nll')).toBe('train');
    expect(sectionOf('loss')).toBe('other');
    expect(sectionOf('/odd')).toBe('other');
  });
});

describe('keyMatcher', () => {
  it('matches substrings case-insensitively, and * as anything in between', () => {
    expect(keyMatcher('Loss')('train/loss')).toBe(true);
    expect(keyMatcher('val*acc')('val/task_accuracy')).toBe(true);
    expect(keyMatcher('acc*val')('val/task_accuracy')).toBe(false);
    expect(keyMatcher('*')('anything')).toBe(true);
    expect(keyMatcher('  ')('anything')).toBe(true);
    // regex syntax is plain text, never compiled
    expect(keyMatcher('.*')('train/loss')).toBe(false);
    expect(keyMatcher('(a+)+$')('(a+)+$ key')).toBe(true);
  });

  it('stays fast on hostile patterns and caps their length', () => {
    const key = 'a'.repeat(10_000);
    const t0 = performance.now();
    expect(keyMatcher('a*'.repeat(45) + 'b')(key)).toBe(false);
    expect(keyMatcher('a*'.repeat(45) + 'a')(key)).toBe(true);
    expect(performance.now() - t0).toBeLessThan(100);
    // past MAX_FILTER characters the rest is ignored: the b at the end is never looked for
    expect(keyMatcher('a'.repeat(MAX_FILTER) + 'b')(key)).toBe(true);
  });
});

describe('collapsed sections in the URL', () => {
  it('defaults to dist and sys collapsed when the parameter is absent', () => {
    expect([...parseCollapsed(null)].sort()).toEqual(['dist', 'sys']);
    expect([...parseCollapsed('')]).toEqual([]);
    expect([...parseCollapsed('train, custom')].sort()).toEqual(['custom', 'train']);
  });

  it('toggles a section, and writes nothing when the result is the default', () => {
    const opened = toggleCollapsed(null, 'dist');
    expect(opened).toBe('sys');
    expect(toggleCollapsed(opened, 'sys')).toBe('');
    expect(toggleCollapsed(opened, 'dist')).toBeNull();
    expect(toggleCollapsed(null, 'train')).toBe('dist,sys,train');
  });
});
