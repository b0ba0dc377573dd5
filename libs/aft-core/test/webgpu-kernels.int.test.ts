/**
 * Our WGSL kernels (src/kernels/webgpu) against the tfjs composite they replace, on webgpu, and against our wasm
 * kernels on the same seeded inputs (issue 18): causal self-attention from qkv — y, P and the gradient dqkv — for
 * head widths 8 to 64 and odd lengths, and one AdamW update against the update computed here in float64. Each
 * backend runs in its own process (webgpu-kernels-probe.ts), since a tfjs backend is process-global.
 *
 * Needs Vulkan as webgpu-parity.int.test.ts does: a GPU driver, or Mesa's lavapipe from `bash
 * tools/install-lavapipe.sh` (found in tmp/lavapipe without exporting anything). Where neither is present the
 * tests skip and say why — unless CI=true or AFT_REQUIRE_WEBGPU=1, where that is a failure.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childEnv, ROOT, required, unavailable } from '../src/lavapipe';
import { adamwFloat64 } from './adamw-reference';

const PROBE = resolve(import.meta.dirname, 'webgpu-kernels-probe.ts');

const env = childEnv();
const why = unavailable(env);
if (why && !required) console.warn(`webgpu kernel tests skipped: ${why}`);

type Arrays = { y: number[]; p: number[]; dqkv: number[] };
interface Probe {
  backend: string;
  kernels: string[];
  attention: { B: number; H: number; T: number; hd: number; kernel: Arrays; composite: Arrays }[];
  adamw: {
    attrs: Record<'gradScale' | 'beta1' | 'beta2' | 'bc1' | 'bc2' | 'eps' | 'lr' | 'decay', number>;
    inputs: Record<'p' | 'g' | 'm' | 'v', number[]>;
    out: Record<'p' | 'm' | 'v', number[]>;
  };
  refused: string;
  large: {
    maxElements: number;
    adamw: { n: number; fits: boolean; diffs: Record<string, Compared> };
    attention: { invocations: number; fits: boolean; diffs: Record<string, Compared> };
    seconds: number;
  };
}
type Compared = { diff: number; max: number };

function probe(backend: string, out: string): Promise<Probe> {
  return new Promise((done, fail) => {
    const p = spawn(process.execPath, ['--import', 'tsx', PROBE, backend, out], {
      cwd: ROOT,
      env: { ...env, AFT_BACKEND: backend },
    });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => {
      if (code !== 0) fail(new Error(`the ${backend} probe failed:\n${stderr}`));
      else done(JSON.parse(readFileSync(out, 'utf8')) as Probe);
    });
  });
}

/** The largest difference, element by element, recorded under `name` for the summary printed at the end. */
const measured: Record<string, number> = {};
function maxAbsDiff(name: string, a: number[], b: number[]) {
  expect(b, name).toHaveLength(a.length);
  const d = a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
  measured[name] = Math.max(measured[name] ?? 0, d);
  return d;
}
const maxAbs = (a: number[]) => a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

// fp32, relative to the largest magnitude compared (at least 1). Measured on lavapipe: y 8e-7 (of 3.8), P 2.4e-7,
// dqkv 1e-6 (of 4.1) against either reference; AdamW 1.2e-7 from float64, as the wasm kernel
const TOL = 1e-5;

if (why && required) {
  describe('webgpu kernels: required here (CI=true or AFT_REQUIRE_WEBGPU=1)', () => {
    it('has WebGPU', () => {
      throw new Error(`WebGPU is unavailable: ${why}`);
    });
  });
}

describe.skipIf(why)(`webgpu kernels${why ? ` (skipped: ${why})` : ''}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'aft-webgpu-kernels-'));
  let gpu: Probe;
  let wasm: Probe;
  beforeAll(async () => {
    [gpu, wasm] = await Promise.all([probe('webgpu', join(dir, 'webgpu.json')), probe('wasm', join(dir, 'wasm.json'))]);
  }, 300_000);
  afterAll(() => {
    console.log(`webgpu kernels, max abs diffs: ${JSON.stringify(measured)}`);
    rmSync(dir, { recursive: true, force: true });
  });

  it('ran ours on webgpu', () => {
    expect(gpu.backend).toBe('webgpu');
    expect(gpu.kernels).toEqual(['AftAttention', 'AftAttentionGrad', 'AftAdamW']);
    expect(wasm.backend).toBe('wasm');
  });

  it('computes causal attention from qkv (y, P, dqkv) as the tfjs composite does on webgpu', () => {
    expect(gpu.attention.map((c) => c.hd)).toEqual([16, 8, 32, 64]);
    for (const c of gpu.attention) {
      const at = `B=${c.B} H=${c.H} T=${c.T} hd=${c.hd}`;
      for (const k of ['y', 'p', 'dqkv'] as const) {
        const ref = c.composite[k];
        expect(maxAbs(ref), `${at} ${k}`).toBeGreaterThan(0.5); // a kernel writing zeros would not pass
        expect(maxAbsDiff(`${k} vs composite`, ref, c.kernel[k]), `${at} ${k}`).toBeLessThanOrEqual(
          TOL * Math.max(1, maxAbs(ref)),
        );
      }
      // P is causal: every row sums to 1 and is 0 above the diagonal
      const { T } = c;
      for (let r = 0; r < c.B * c.H * T; r++) {
        const row = c.kernel.p.slice(r * T, (r + 1) * T);
        expect(Math.abs(row.reduce((a, x) => a + x, 0) - 1)).toBeLessThan(1e-5);
        expect(row.slice((r % T) + 1).every((x) => x === 0)).toBe(true);
      }
    }
  });

  it('matches our wasm attention kernels on the same inputs', () => {
    for (const [i, c] of gpu.attention.entries()) {
      const w = wasm.attention[i]!;
      for (const k of ['y', 'p', 'dqkv'] as const) {
        const d = maxAbsDiff(`${k} vs wasm`, w.kernel[k], c.kernel[k]);
        expect(d, `hd=${c.hd} ${k}`).toBeLessThanOrEqual(TOL * Math.max(1, maxAbs(w.kernel[k])));
      }
    }
  });

  it('applies AdamW as the update in float64 does (clip scale, moments, bias correction, decay)', () => {
    const { attrs, inputs, out } = gpu.adamw;
    const ref = adamwFloat64(attrs, inputs);
    expect(inputs.p).toHaveLength(1037);
    for (const k of ['p', 'm', 'v'] as const) {
      const r = Array.from(ref[k]);
      expect(maxAbsDiff(`adamw ${k}`, r, out[k]), k).toBeLessThanOrEqual(TOL * Math.max(1, maxAbs(r)));
      expect(maxAbsDiff(`adamw ${k} vs wasm`, wasm.adamw.out[k], out[k]), k).toBeLessThanOrEqual(1e-6);
    }
    expect(maxAbsDiff('adamw moved p', inputs.p, out.p)).toBeGreaterThan(1e-3); // it did update
  });

  it('runs ours past the old 1-D dispatch limit (65,535 workgroups of 64), within the same tolerance', () => {
    const { large } = gpu;
    const oldLimit = 65_535 * 64;
    expect(large.maxElements).toBeGreaterThanOrEqual(2 ** 25); // WebGPU's default binding size, 128 MiB
    expect(large.adamw.n).toBeGreaterThan(oldLimit);
    expect(large.attention.invocations).toBeGreaterThan(oldLimit);
    for (const [name, c] of Object.entries({ adamw: large.adamw, attention: large.attention })) {
      expect(c.fits, `${name} is ours, not tfjs's`).toBe(true);
      expect(Object.keys(c.diffs)).toEqual(name === 'adamw' ? ['p', 'm', 'v'] : ['y', 'p', 'dqkv']);
      for (const [k, { diff, max }] of Object.entries(c.diffs)) {
        measured[`large ${name} ${k}`] = diff;
        expect(max, `${name} ${k}`).toBeGreaterThan(0.1); // so an output left unwritten would be far off
        expect(diff, `${name} ${k}`).toBeLessThanOrEqual(TOL * Math.max(1, max));
      }
    }
    console.log(`webgpu kernels past the old dispatch limit: ${large.seconds.toFixed(1)} s in the probe`);
  });

  it('refuses a P of the wrong shape, naming the kernel', () => {
    expect(gpu.refused).toMatch(/^AftAttentionGrad: expected float32 \[4,5,5\], got float32 \[4,5,4\]/);
  });
});
