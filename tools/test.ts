/**
 * `npm test`: lint (module boundaries, format), typecheck, build the web app, then every test tier — unit,
 * integration (real Postgres and Redis) and end-to-end (the built app in Debian's Chromium) — in one vitest run.
 * Ends with a plain `N passed, N failed` line computed from vitest's JSON report, so a run that executed no test
 * is visible. Extra arguments go to vitest (e.g. `npm test -- --project unit`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const env = { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false', NEXT_TELEMETRY_DISABLED: '1' };
const extra = process.argv.slice(2);
const quick = extra.length > 0;

function step(name: string, cmd: string, args: string[]): boolean {
  const t0 = Date.now();
  console.log(`\n▶ ${name}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: ROOT, env, stdio: 'inherit' });
  const ok = r.status === 0;
  console.log(`${ok ? '✔' : '✘'} ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  return ok;
}

mkdirSync(resolve(ROOT, 'tmp'), { recursive: true });
rmSync(resolve(ROOT, 'tmp/test-summary.txt'), { force: true });
const failed: string[] = [];
if (!quick) {
  // the module-boundaries rule reads Nx's project graph: compute it first, or the rule is skipped
  // eslint (with module boundaries, which need Nx's project graph first) and prettier's format (.prettierignore)
  if (!step('lint', 'npm', ['run', 'lint', '--silent'])) failed.push('lint');
  if (!step('typecheck', 'npx', ['nx', 'run-many', '-t', 'typecheck', '--outputStyle=static']))
    failed.push('typecheck');
  if (!step('build web', 'npx', ['next', 'build', 'apps/web'])) failed.push('build');
}

const report = resolve(ROOT, 'tmp/vitest-report.json');
rmSync(report, { force: true });
step('tests', 'npx', [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${report}`,
  ...extra,
]);

let passed = 0;
let failedTests: number;
let skipped = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8')) as {
    numPassedTests: number;
    numFailedTests: number;
    numPendingTests: number;
    numTodoTests: number;
    numFailedTestSuites: number;
  };
  passed = r.numPassedTests;
  failedTests = r.numFailedTests + r.numFailedTestSuites;
  skipped = r.numPendingTests + r.numTodoTests;
} else {
  failedTests = 1;
  failed.push('tests (no report)');
}
if (failedTests > 0) failed.push('tests');
if (passed === 0) failed.push('tests (none ran)');
if (failed.length) console.log(`\nFailed: ${[...new Set(failed)].join(', ')}`);
const summary = `${passed} passed, ${failedTests} failed${skipped ? `, ${skipped} skipped` : ''}`;
writeFileSync(resolve(ROOT, 'tmp/test-summary.txt'), `${summary}\n`);
console.log(`\n${summary}`);
process.exit(failed.length ? 1 : 0);
