/**
 * The GPU check's summary (tools/gpu-check/README.md "summary.json"): reads the stage table run.sh wrote
 * (stages.tsv: name, exit code, seconds, limit, output file) and each stage's output, turns the stdout of the bench
 * and of `aft vft` into their own JSON files, and writes summary.json with every stage's outcome and the headline
 * numbers. A stage that failed or ran out of time keeps what it printed before (the VFT's loss curve up to then).
 *
 *   node summary.mjs OUTDIR
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const out = process.argv[2];
if (!out) {
  console.error('usage: node summary.mjs OUTDIR');
  process.exit(2);
}

type Json = Record<string, unknown>;
const text = (f: string) => (existsSync(join(out, f)) ? readFileSync(join(out, f), 'utf8') : '');

function parseJson(s: string): Json | null {
  try {
    return JSON.parse(s) as Json;
  } catch {
    return null;
  }
}

/** A command's JSON summary: its stdout from the first line that opens an object (anything printed before is not). */
function jsonOfStdout(s: string): Json | null {
  const lines = s.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.startsWith('{')) {
      const j = parseJson(lines.slice(i).join('\n'));
      if (j) return j;
    }
  }
  return null;
}

/** `1m05s` / `12s` / `2h03m` (the CLI's progress format) in seconds. */
function seconds(s: string): number {
  const m = s.match(/^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/);
  return m ? Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0) : NaN;
}

/** The VFT's loss at each progress line of `aft vft` on stderr (a line per 5% of the steps when not a terminal). */
function vftProgress(log: string) {
  const curve: { step: number; loss: number; elapsedSeconds: number }[] = [];
  const evals: { step: number; accuracy: number; refPerplexity: number }[] = [];
  for (const l of log.split('\n')) {
    const p = l.match(/ (\d+)\/(\d+) \d+%\s+(\S+) elapsed.*\bloss (-?[\d.]+|NaN)/);
    if (p) curve.push({ step: Number(p[1]), loss: Number(p[4]), elapsedSeconds: seconds(p[3]!) });
    const e = l.match(/\[eval\] step (\d+): accuracy ([\d.]+)%, ref ppl ([\d.]+)/);
    if (e) evals.push({ step: Number(e[1]), accuracy: Number(e[2]) / 100, refPerplexity: Number(e[3]) });
  }
  return { curve, evals };
}

interface Stage {
  name: string;
  ok: boolean;
  exitCode: number | null;
  timedOut: boolean;
  seconds: number;
  limitSeconds: number;
  file: string | null;
  error?: string;
}

const stages: Stage[] = [];
const results: Json = {};
for (const row of text('stages.tsv').split('\n').filter(Boolean)) {
  const [name = '', rc = '', secs = '', limit = '', file = ''] = row.split('\t');
  const exitCode = rc === 'skipped' ? null : Number(rc);
  const stage: Stage = {
    name,
    ok: exitCode === 0,
    exitCode,
    // timeout(1) exits 124, or 137 when the stage had to be killed after ignoring SIGTERM
    timedOut: exitCode === 124 || exitCode === 137,
    seconds: Number(secs),
    limitSeconds: Number(limit),
    file: file || null,
  };
  let data: Json | null = null;
  if (file.endsWith('.stdout')) {
    // the bench and `aft vft` print their JSON on stdout: it becomes <stage>.json
    data = jsonOfStdout(text(file));
    stage.file = `${name}.json`;
    if (name.startsWith('vft-')) {
      const { curve, evals } = vftProgress(text(`${name}.log`));
      const first = curve[0];
      const last = curve[curve.length - 1];
      data = {
        cli: data,
        stepsDone: last?.step ?? 0,
        lossStart: first?.loss ?? null,
        lossEnd: last?.loss ?? null,
        lossCurve: curve,
        evals,
        tokensPerSecond: (data?.['tokensPerSecond'] as number | undefined) ?? null,
        /** Training only (the CLI's own clock); wall time adds start-up and the final test-split evaluation. */
        trainSeconds: (data?.['seconds'] as number | undefined) ?? null,
        wallSeconds: stage.seconds,
      };
    }
    if (data) writeFileSync(join(out, stage.file), `${JSON.stringify(data, null, 2)}\n`);
    else if (stage.ok) stage.ok = false;
  } else if (file) {
    data = parseJson(text(file));
    if (!data && stage.ok) stage.ok = false;
  }
  if (!stage.ok) {
    const log = text(`${name}.log`).trimEnd().split('\n').slice(-15).join('\n');
    stage.error =
      exitCode === null
        ? 'skipped: no time left in the overall budget'
        : (stage.timedOut ? `ran out of its ${limit} s; ` : '') + (log.slice(-2000) || `exit code ${rc}, no output`);
  }
  stages.push(stage);
  if (!data) continue;
  if (name === 'probe') {
    const backend = data['backend'] as { adapter?: Json } | undefined;
    results['adapter'] = backend?.adapter ?? null;
    results['nvidia'] = data['nvidia'] ?? null;
    results['loadedLibraries'] = data['loadedLibraries'] ?? null;
  } else if (name === 'matmul') {
    results['matmul'] = (data['results'] as Json[]).map((r) =>
      r['error']
        ? { n: r['n'], error: r['error'] }
        : { n: r['n'], gflops: r['gflops'], gflopsWithRead: r['gflopsWithRead'] },
    );
  } else if (name.startsWith('bench-train-')) {
    const r = ((data['results'] as Json[] | undefined) ?? [])[0] ?? {};
    const pick = [
      ...['preset', 'params', 'batch', 'secondsPerStep', 'tokensPerSecond', 'achievedGflops'],
      ...['matmulGflops', 'matmulSize', 'ratio', 'tfjsOnly', 'profile'],
    ];
    (results['benchTrain'] ??= {} as Json) as Json;
    (results['benchTrain'] as Json)[name.slice('bench-train-'.length)] = Object.fromEntries(
      pick.filter((k) => k in r).map((k) => [k, r[k]]),
    );
  } else if (name.startsWith('vft-')) {
    const { lossCurve: _curve, cli, ...rest } = data;
    const final = (cli as Json | null)?.['final'] as Json | null | undefined;
    results['vft'] = { preset: name.slice(4), ...rest, testAccuracy: final?.['taskAccuracy'] ?? null };
  }
}

const manifest = parseJson(text('bundle-manifest.json'));
const summary = {
  check: 'aft-gpu-check',
  ok: stages.length > 0 && stages.every((s) => s.ok),
  quick: process.env['GPU_CHECK_QUICK'] === '1',
  startedAt: process.env['GPU_CHECK_STARTED_AT'] ?? null,
  finishedAt: new Date().toISOString(),
  wallSeconds: Number(process.env['GPU_CHECK_ELAPSED_S'] ?? NaN) || null,
  bundle: manifest && { createdAt: manifest['createdAt'], versions: manifest['versions'] },
  stages,
  results,
};
writeFileSync(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
process.stdout.write(
  `${JSON.stringify({ ok: summary.ok, stages: stages.map((s) => `${s.name}:${s.ok ? 'ok' : 'FAILED'}`) })}\n`,
);
