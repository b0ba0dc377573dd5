/**
 * The build context of the images (docker/compose.yml builds from the repository root): .dockerignore read with
 * Docker's rules keeps secrets and local state out (above all .demo/, with the session secret and the demo's
 * password and API key) and leaves in every file the repository tracks, so the images still build.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

/**
 * Docker's .dockerignore matching (moby/patternmatcher): patterns are cleaned and anchored at the context root,
 * `*` and `?` stay within a path segment, `**` spans any number of them, a `!` pattern re-includes, the last
 * matching pattern wins, and a pattern that matches a folder excludes everything under it.
 */
function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const p = (negate ? l.slice(1) : l).trim().replace(/^\/+|\/+$/g, '');
      let re = '';
      for (let i = 0; i < p.length; i++) {
        const c = p[i]!;
        if (c === '*' && p[i + 1] === '*') {
          re += p[i + 2] === '/' ? '(?:.*/)?' : '.*';
          i += p[i + 2] === '/' ? 2 : 1;
        } else if (c === '*') re += '[^/]*';
        else if (c === '?') re += '[^/]';
        else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { negate, re: new RegExp(`^${re}(?:/.*)?$`) };
    });
  return (path) => {
    let excluded = false;
    for (const r of rules) if (r.re.test(path)) excluded = !r.negate;
    return excluded;
  };
}

const FILE = resolve(ROOT, '.dockerignore');
const excluded = (path: string) => dockerignore(existsSync(FILE) ? readFileSync(FILE, 'utf8') : '')(path);

describe('.dockerignore', () => {
  it('keeps secrets and local state out of the build context', () => {
    expect(existsSync(FILE), 'a .dockerignore at the repository root').toBe(true);
    for (const p of [
      '.demo/auth-secret',
      '.demo/api-key',
      '.demo/password',
      '.demo/web.log',
      '.env',
      '.env.local',
      'apps/web/.env.production',
      'node_modules/next/package.json',
      'apps/web/node_modules/x/index.js',
      'apps/web/.next/server/app.js',
      '.git/config',
      '.aft/mlflow-artifacts/mlflow/r1/a.txt',
      'artifacts/runs/r1/checkpoint/weights.bin',
      'libs/db/src/generated/prisma/client.ts',
      'tmp/scratch.json',
    ])
      expect(excluded(p), p).toBe(true);
  });

  it('leaves in every file the repository tracks (the images build from them)', () => {
    const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(tracked.length).toBeGreaterThan(50);
    expect(tracked.filter(excluded)).toEqual([]);
    for (const p of ['apps/web/src/app/runs/[runId]/page.tsx', 'package-lock.json', 'prisma/schema.prisma'])
      expect(excluded(p), p).toBe(false);
  });

  it("leaves in what the Dockerfiles' COPY lines name", () => {
    for (const f of ['Dockerfile.web', 'Dockerfile.worker', 'Dockerfile.worker-gpu']) {
      const copies = readFileSync(resolve(ROOT, 'docker', f), 'utf8')
        .split('\n')
        .filter((l) => /^COPY\s/.test(l) && !/--from=/.test(l))
        .flatMap((l) => l.trim().split(/\s+/).slice(1, -1))
        .filter((s) => s !== '.');
      expect(copies.length, f).toBeGreaterThan(0);
      for (const s of copies) expect(excluded(s.replace(/\/$/, '')), `${f}: ${s}`).toBe(false);
    }
  });
});
