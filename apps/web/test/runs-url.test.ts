import { describe, expect, it } from 'vitest';
import { HIDEABLE_COLUMNS, parseRunsView, runsViewHref } from '../src/lib/runs-url';

describe('hidden built-in columns in the runs view URL', () => {
  it('reads known names only, each once, in the table order, and writes them back the same', () => {
    const v = parseRunsView({ hide: 'runtime,Tags,bogus,tags,runtime,name', cols: 'test/acc' });
    expect(v.hide).toEqual(['tags', 'runtime']);
    expect(runsViewHref('/p/1', v)).toBe('/p/1?cols=test%2Facc&hide=tags%2Cruntime');
    // one view, one URL: the order a person hid them in does not matter
    expect(runsViewHref('/p/1', v, { hide: ['runtime', 'status', 'tags'] })).toBe(
      '/p/1?cols=test%2Facc&hide=status%2Ctags%2Cruntime',
    );
  });

  it('keeps links from before hiding existed working: nothing hidden, nothing written', () => {
    const v = parseRunsView({ cols: 'a,b', group: '1', sort: 'summary.a' });
    expect(v.hide).toEqual([]);
    expect(runsViewHref('/p/1', v)).toBe('/p/1?sort=summary.a&cols=a%2Cb&group=1');
  });

  it('round-trips every hideable column', () => {
    const v = parseRunsView({ hide: [...HIDEABLE_COLUMNS].reverse().join(',') });
    const back = parseRunsView(Object.fromEntries(new URLSearchParams(runsViewHref('/p', v).split('?')[1])));
    expect(back.hide).toEqual([...HIDEABLE_COLUMNS]);
  });
});
