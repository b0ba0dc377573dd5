/**
 * `aft reproduce`: the paper's experiment end to end, per seed — VFT, sampling and labelling, then from the same
 * parent: continued VFT, RFT, AFT none/detach/boundary, DPO/RRHF/PRO with and without a constraint, a β sweep of
 * the boundary, and an unconstrained w_nll = 0 run. Every run is its own `aft` process (two at a time on two
 * cores); the results table is mean ± std over seeds, written as Markdown and JSON.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Progress } from './progress';

export interface AlignRunSpec {
  name: string;
  args: string[];
}

/** The comparison grid: every run continues from the seed's VFT parent with its sample set. */
export const REPRODUCE_GRID: AlignRunSpec[] = [
  { name: 'VFT (continued)', args: ['--method', 'vft'] },
  { name: 'RFT', args: ['--method', 'rft'] },
  { name: 'AFT none', args: ['--method', 'aft', '--constraint', 'none'] },
  { name: 'AFT detach', args: ['--method', 'aft', '--constraint', 'detach'] },
  { name: 'AFT boundary β=1', args: ['--method', 'aft', '--constraint', 'boundary', '--beta', '1'] },
  { name: 'AFT boundary β=0.5', args: ['--method', 'aft', '--constraint', 'boundary', '--beta', '0.5'] },
  { name: 'AFT boundary β=2', args: ['--method', 'aft', '--constraint', 'boundary', '--beta', '2'] },
  { name: 'DPO none', args: ['--method', 'dpo', '--constraint', 'none'] },
  { name: 'DPO boundary', args: ['--method', 'dpo', '--constraint', 'boundary', '--beta', '1'] },
  { name: 'RRHF none', args: ['--method', 'rrhf', '--constraint', 'none'] },
  { name: 'RRHF boundary', args: ['--method', 'rrhf', '--constraint', 'boundary', '--beta', '1'] },
  { name: 'PRO none', args: ['--method', 'pro', '--constraint', 'none'] },
  { name: 'PRO boundary', args: ['--method', 'pro', '--constraint', 'boundary', '--beta', '1'] },
  {
    name: 'AFT none, w_nll=0',
    args: ['--method', 'aft', '--constraint', 'none', '--w-nll', '0', '--set', 'optim.lr=0.003'],
  },
];

export interface RunOutcome {
  name: string;
  seed: number;
  taskAccuracy: number;
  assessmentAccuracy: number | null;
  scoreGap: number | null;
  refPerplexity: number;
  malformedRate: number;
  degraded: boolean;
  onsetStep: number | null;
}

const stats = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean: m, std: sd, n: xs.length };
};

export interface TableRow {
  name: string;
  seeds: number;
  taskAccuracy: { mean: number; std: number };
  assessmentAccuracy: { mean: number; std: number } | null;
  scoreGap: { mean: number; std: number } | null;
  refPerplexity: { mean: number; std: number };
  malformedRate: { mean: number; std: number };
  degraded: string;
}

/** Mean ± std over seeds per run name, in the grid's order. */
export function summarise(outcomes: readonly RunOutcome[], order: readonly string[]): TableRow[] {
  return order
    .map((name) => outcomes.filter((o) => o.name === name))
    .filter((rs) => rs.length > 0)
    .map((rs) => {
      const nums = (f: (o: RunOutcome) => number | null) =>
        rs.map(f).filter((v): v is number => v !== null && Number.isFinite(v));
      const opt = (xs: number[]) => (xs.length ? stats(xs) : null);
      const deg = rs.filter((r) => r.degraded);
      const onsets = deg.map((r) => r.onsetStep).filter((s): s is number => s !== null);
      return {
        name: rs[0]!.name,
        seeds: rs.length,
        taskAccuracy: stats(nums((o) => o.taskAccuracy)),
        assessmentAccuracy: opt(nums((o) => o.assessmentAccuracy)),
        scoreGap: opt(nums((o) => o.scoreGap)),
        refPerplexity: stats(rs.map((o) => o.refPerplexity)),
        malformedRate: stats(nums((o) => o.malformedRate)),
        degraded: deg.length
          ? `${deg.length}/${rs.length} (step ${onsets.length ? Math.round(stats(onsets).mean) : '?'})`
          : `0/${rs.length}`,
      };
    });
}

export function toMarkdown(rows: readonly TableRow[]): string {
  const pm = (v: { mean: number; std: number } | null, scale = 1, digits = 1) =>
    v ? `${(v.mean * scale).toFixed(digits)} ± ${(v.std * scale).toFixed(digits)}` : '—';
  const head =
    '| method | seeds | task acc. % | assessment acc. % | pos−neg gap | ref. perplexity | malformed % | degraded |';
  const sep = '|---|---|---|---|---|---|---|---|';
  const lines = rows.map(
    (r) =>
      `| ${r.name} | ${r.seeds} | ${pm(r.taskAccuracy, 100)} | ${pm(r.assessmentAccuracy, 100)} | ${pm(r.scoreGap, 1, 3)} | ${pm(r.refPerplexity, 1, 3)} | ${pm(r.malformedRate, 100)} | ${r.degraded} |`,
  );
  return [head, sep, ...lines].join('\n');
}

function runAft(bin: string, args: string[], log: string): Promise<unknown> {
  return new Promise((res, rej) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      writeFileSync(log, err);
      if (code === 0) res(JSON.parse(out));
      else rej(new Error(`aft ${args.join(' ')} exited ${code}:\n${err.slice(-2000)}`));
    });
  });
}

/** A FIFO semaphore: at most `n` processes at once, whatever stage they belong to. */
function limiter(n: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(f: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await f();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/**
 * Settings of the grid's alignment runs that keep the whole reproduction inside 30 minutes on two cores: the full
 * 500-question test split for the final accuracy, fewer questions for the periodic (degradation) evaluations and
 * the assessment.
 */
export const REPRODUCE_ALIGN_SETS = [
  'evalEvery=20',
  'checkpointEvery=1000',
  'evalQuestions=40',
  'eval.assessQuestions=50',
];

export interface ReproduceOptions {
  preset: string;
  seeds: number;
  alignSteps: number;
  vftSteps?: number;
  questions: number;
  concurrency: number;
  out: string;
  bin: string;
}

export async function reproduce(o: ReproduceOptions) {
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const seeds = Array.from({ length: o.seeds }, (_, i) => i + 1);
  const total = seeds.length * (2 + REPRODUCE_GRID.length);
  const bar = new Progress('reproduce', total);
  let done = 0;
  const tick = () => bar.update(++done);
  const t0 = performance.now();
  const seedDir = (s: number) => join(out, `seed-${s}`);
  // per seed: VFT → sample → the grid; seeds overlap, so both cores stay busy to the end
  const limit = limiter(o.concurrency);
  const step = <T>(f: () => Promise<T>) => limit(f).then((r) => (tick(), r));
  const perSeed = await Promise.all(
    seeds.map(async (s) => {
      const ckpt = join(seedDir(s), 'vft', 'checkpoint');
      const samples = join(seedDir(s), 'samples.jsonl');
      await step(() =>
        runAft(
          o.bin,
          [
            'vft',
            '--preset',
            o.preset,
            '--seed',
            String(s),
            '--out',
            join(seedDir(s), 'vft'),
            ...(o.vftSteps ? ['--steps', String(o.vftSteps)] : []),
          ],
          join(out, `vft-${s}.log`),
        ),
      );
      await step(() =>
        runAft(
          o.bin,
          [
            'sample',
            '--checkpoint',
            ckpt,
            '--k',
            '8',
            '--temperature',
            '0.8',
            '--split',
            'train',
            '--questions',
            String(o.questions),
            '--seed',
            String(s),
            '--out',
            samples,
          ],
          join(out, `sample-${s}.log`),
        ),
      );
      return Promise.all(
        REPRODUCE_GRID.map((r, k) =>
          step(async (): Promise<RunOutcome> => {
            const res = (await runAft(
              o.bin,
              [
                'align',
                '--parent',
                ckpt,
                '--samples',
                samples,
                '--steps',
                String(o.alignSteps),
                '--seed',
                String(s),
                ...r.args,
                ...REPRODUCE_ALIGN_SETS.flatMap((x) => ['--set', x]),
                '--out',
                join(seedDir(s), `run-${k}`),
              ],
              join(out, `align-${s}-${k}.log`),
            )) as {
              final: Record<string, number | null>;
              degradation: { degraded: boolean; onsetStep: number | null };
            };
            return {
              name: r.name,
              seed: s,
              taskAccuracy: res.final['taskAccuracy'] as number,
              assessmentAccuracy: res.final['assessmentAccuracy'] ?? null,
              scoreGap: res.final['scoreGap'] ?? null,
              refPerplexity: res.final['refPerplexity'] as number,
              malformedRate: res.final['malformedRate'] as number,
              degraded: res.degradation.degraded,
              onsetStep: res.degradation.onsetStep,
            };
          }),
        ),
      );
    }),
  );
  const outcomes = perSeed.flat();
  bar.done();
  const rows = summarise(
    outcomes,
    REPRODUCE_GRID.map((r) => r.name),
  );
  const markdown = toMarkdown(rows);
  const seconds = (performance.now() - t0) / 1000;
  writeFileSync(join(out, 'results.md'), `${markdown}\n`);
  writeFileSync(join(out, 'results.json'), JSON.stringify({ rows, outcomes, seconds }, null, 2));
  return {
    command: 'reproduce',
    out,
    seeds: o.seeds,
    alignSteps: o.alignSteps,
    seconds: Number(seconds.toFixed(1)),
    rows,
    markdown,
  };
}
