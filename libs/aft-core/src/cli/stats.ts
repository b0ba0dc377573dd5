/**
 * `aft stats paired --control ARM`: per-question correctness as JSON lines on stdin, one JSON report on stdout
 * (fractions, not percents). A bad line is refused with its number (exit 2), and nothing is printed.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { pairedComparison, parseCorrectnessLines, RowError } from '../stats';
import { num, UsageError } from './util';

export async function statsCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'paired') throw new UsageError(sub ? `unknown stats command "${sub}"` : 'stats needs a command: paired');
  const { values } = parseArgs({
    args: rest,
    options: {
      control: { type: 'string' },
      resamples: { type: 'string', default: '2000' },
      seed: { type: 'string', default: '1' },
    },
  });
  if (!values.control) throw new UsageError('stats paired needs --control <arm>');
  const lines: string[] = [];
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) lines.push(line);
  try {
    const rows = parseCorrectnessLines(lines);
    const report = pairedComparison(rows, values.control, {
      resamples: num(values.resamples, 'resamples', { int: true, min: 100, max: 1_000_000 }),
      seed: num(values.seed, 'seed', { int: true, min: 0 }),
    });
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } catch (e) {
    if (e instanceof RowError || e instanceof RangeError) throw new UsageError(`stats paired: ${e.message}`);
    throw e;
  }
}
