import { describe, expect, it } from 'vitest';
import { configDiff, groupOf, resultRows, toCsv, toLatex, toMarkdown, type ResultRun } from '../src/lib/results';
import { groupSeries } from '../src/lib/group-series';

const run = (
  id: string,
  method: string,
  constraint: string,
  seed: number,
  acc: number | null,
  extra: Partial<ResultRun> = {},
): ResultRun => ({
  id,
  name: id,
  method,
  constraint,
  config: { beta: 1, lr: 3e-4 },
  seed,
  status: 'succeeded',
  summary: acc === null ? {} : { 'test/task_accuracy': acc, 'test/ref_perplexity': 1.2 },
  parentRunId: method === 'vft' && id.startsWith('parent') ? null : 'parent-1',
  ...extra,
});

describe('results table', () => {
  const runs = [
    run('parent-1', 'vft', 'none', 1, 0.4),
    run('a1', 'aft', 'boundary', 1, 0.45),
    run('a2', 'aft', 'boundary', 2, 0.47),
    run('a3', 'aft', 'boundary', 3, 0.43, { config: { beta: 2 } }),
    run('d1', 'dpo', 'none', 1, 0.3, { summary: { 'test/task_accuracy': 0.3, degraded: true } }),
    run('c1', 'vft', 'none', 1, 0.41),
    run('x1', 'aft', 'none', 1, null, { status: 'running' }),
  ];

  it('groups by method × constraint × β, puts the VFT parent first, and computes mean ± sample std over finished runs', () => {
    const rows = resultRows(runs);
    expect(rows.map((r) => r.label)).toEqual([
      'VFT',
      'VFT (continued)',
      'AFT none',
      'AFT boundary β=1',
      'AFT boundary β=2',
      'DPO none',
    ]);
    const b1 = rows.find((r) => r.label === 'AFT boundary β=1')!;
    expect(b1.stats['test/task_accuracy']!.mean).toBeCloseTo(0.46, 12);
    expect(b1.stats['test/task_accuracy']!.std).toBeCloseTo(Math.SQRT2 * 0.01, 12);
    const running = rows.find((r) => r.label === 'AFT none')!;
    expect([running.runs, running.finished, running.stats['test/task_accuracy']]).toEqual([1, 0, null]);
    expect(rows.find((r) => r.label === 'DPO none')!.degraded).toBe(1);
  });

  it('exports CSV, Markdown and LaTeX with the same numbers', () => {
    const rows = resultRows(runs);
    const csv = toCsv(rows).split('\n');
    expect(csv[0]).toMatch(/^method,constraint,beta,runs,finished,degraded,test\/task_accuracy mean/);
    expect(csv[4]!.split(',').slice(0, 6)).toEqual(['aft', 'boundary', '1', '2', '2', '0']);
    expect(Number(csv[4]!.split(',')[6])).toBeCloseTo(0.46, 12);
    expect(toMarkdown(rows)).toContain('| AFT boundary β=1 | 2/2 | 46.0 ± 1.4 |');
    expect(toLatex(rows)).toContain('AFT boundary $\\beta$=1 & 2/2 & 46.0 $\\pm$ 1.4 &');
    expect(groupOf(runs[0]!).key).toBe('vft-parent|none|');
  });

  it('CSV never hands a spreadsheet a formula from a method or constraint name (logged runs name their own)', () => {
    const csv = toCsv(resultRows([run('e1', '=HYPERLINK("http://evil","x")', '@SUM(1)', 1, 0.5)]));
    const line = csv.split('\n')[1]!;
    expect(line.startsWith(`"'=HYPERLINK(""http://evil"",""x"")",'@SUM(1),`)).toBe(true);
  });

  it('diffs configs, keeping only the keys that differ', () => {
    expect(
      configDiff([
        { id: 'a', config: { lr: 1, model: { d: 64 } } },
        { id: 'b', config: { lr: 2, model: { d: 64 } } },
      ]),
    ).toEqual([{ key: 'lr', values: ['1', '2'] }]);
  });

  it('leaves out where runs trained (worker, backend, resources): not a difference of the experiment', () => {
    expect(
      configDiff([
        {
          id: 'a',
          config: { lr: 1, backend: 'webgpu', 'backend.adapter': 'nvidia', 'worker.host': 'g1', resources: { gpu: 1 } },
        },
        { id: 'b', config: { lr: 1, backend: 'wasm', 'backend.kernels': 'simd', 'worker.queue': 'q', backendX: 1 } },
      ]),
    ).toEqual([{ key: 'backendX', values: ['—', '1'] }]);
  });
});

describe('groupSeries', () => {
  const cols = (x: number[], y: (number | null)[]) => ({ x, y, lo: null, hi: null, nonFinite: 0, points: x.length });
  it('averages each group over its runs on the union of steps, with a min–max or ±std band', () => {
    const runs = [
      { runId: 'a', group: 'g', cols: cols([0, 10], [1, 3]) },
      { runId: 'b', group: 'g', cols: cols([0, 10, 20], [3, 5, 7]) },
      { runId: 'c', group: 'h', cols: cols([10], [null]) },
    ];
    const mm = groupSeries(runs, 'minmax');
    expect(mm.x).toEqual([0, 10, 20]);
    expect(mm.groups[0]).toEqual({ key: 'g', mean: [2, 4, 7], lo: [1, 3, 7], hi: [3, 5, 7], runs: 2 });
    expect(mm.groups[1]!.mean).toEqual([null, null, null]);
    const sd = groupSeries(runs, 'std');
    expect(sd.groups[0]!.lo[0]).toBeCloseTo(2 - Math.SQRT2, 12);
    expect(sd.groups[0]!.hi[2]).toBe(7);
  });
});
