/**
 * aft-core's entries that every layer may import (eslint.config.js allows them: the web, the API, the queue) must
 * not pull TensorFlow into those processes or the browser bundle. Follows every relative import from each entry.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const exportsMap = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).exports as Record<string, string>;
// `import … from 'x'`, `export … from 'x'`, a bare `import 'x'` and a dynamic `import('x')`
const IMPORT =
  /^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]/gm;

/** Every package a module and the modules it imports relatively import (type-only imports included: cheap to keep out). */
function externalImports(entry: string): Set<string> {
  const seen = new Set<string>();
  const out = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const spec = (m[1] ?? m[2] ?? m[3])!;
      if (!spec.startsWith('.')) {
        out.add(spec);
        continue;
      }
      const base = resolve(dirname(file), spec);
      const next = [`${base}.ts`, join(base, 'index.ts'), base].find((f) => existsSync(f) && f.endsWith('.ts'));
      if (!next) throw new Error(`${file}: cannot resolve ${spec}`);
      visit(next);
    }
  };
  visit(join(root, entry));
  return out;
}

describe('TensorFlow-free entries', () => {
  it.each(['./spec', './stats', './grader', './gold'])('%s imports no package beyond node built-ins', (entry) => {
    expect(exportsMap[entry], `package.json exports ${entry}`).toBeDefined();
    const pkgs = [...externalImports(exportsMap[entry]!)].filter((p) => !p.startsWith('node:'));
    expect(pkgs).toEqual([]);
  });

  it('sees TensorFlow where it is (the main entry)', () => {
    expect([...externalImports(exportsMap['.']!)]).toContain('@tensorflow/tfjs');
  });
});
