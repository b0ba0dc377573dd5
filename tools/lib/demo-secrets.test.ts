/** The demo's secrets in .demo/ are owner-only: made 0600, and fixed when an older demo left them 0644. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const LIB = resolve(import.meta.dirname, 'demo-secrets.sh');
const mode = (p: string) => statSync(p).mode & 0o777;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function run(script: string, cwd: string) {
  // umask 022, as a default login shell has: what made the old secret world-readable
  execFileSync('bash', ['-euo', 'pipefail', '-c', `umask 022; . "${LIB}"; ${script}`], { cwd, stdio: 'pipe' });
}

describe('tools/lib/demo-secrets.sh', () => {
  it('makes a new session secret 0600 in a 0700 folder', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'aft-demo-'));
    dirs.push(cwd);
    run('secure_demo_dir .demo; ensure_auth_secret .demo', cwd);
    expect(mode(join(cwd, '.demo'))).toBe(0o700);
    expect(mode(join(cwd, '.demo/auth-secret'))).toBe(0o600);
    expect(readFileSync(join(cwd, '.demo/auth-secret'), 'utf8').trim()).toMatch(/^[\w-]{43}$/);
  });

  it('fixes secrets an older demo left 0644, keeping their contents', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'aft-demo-'));
    dirs.push(cwd);
    mkdirSync(join(cwd, '.demo'), { mode: 0o755 });
    for (const f of ['auth-secret', 'api-key', 'password'])
      writeFileSync(join(cwd, '.demo', f), `old-${f}\n`, { mode: 0o644 });
    run('secure_demo_dir .demo; ensure_auth_secret .demo', cwd);
    expect(mode(join(cwd, '.demo'))).toBe(0o700);
    for (const f of ['auth-secret', 'api-key', 'password']) {
      expect(mode(join(cwd, '.demo', f)), f).toBe(0o600);
      expect(readFileSync(join(cwd, '.demo', f), 'utf8'), f).toBe(`old-${f}\n`);
    }
  });

  it('is what tools/demo.sh uses, before the seed and the secret are written', () => {
    const demo = readFileSync(resolve(import.meta.dirname, '../demo.sh'), 'utf8');
    const at = (s: string) => demo.indexOf(s);
    expect(at('. tools/lib/demo-secrets.sh')).toBeGreaterThan(0);
    expect(at('secure_demo_dir .demo')).toBeGreaterThan(at('. tools/lib/demo-secrets.sh'));
    expect(at('secure_demo_dir .demo')).toBeLessThan(at('prisma/seed.ts'));
    expect(at('ensure_auth_secret .demo')).toBeLessThan(at('cat .demo/auth-secret'));
    expect(demo).not.toMatch(/>\s*\.demo\/auth-secret/);
  });
});
