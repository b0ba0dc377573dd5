/**
 * The GPU check's adapter probe (tools/gpu-check/README.md "probe.json"): what this machine offers WebGPU — the
 * host, the NVIDIA driver, the Vulkan drivers (ICD files) the loader will read, every adapter Dawn reports and the
 * one tfjs-backend-webgpu initialises on — then a 256² matMul checked against a float64 reference, and which Vulkan
 * libraries the process actually loaded. Written to --out (JSON) whatever fails; exit 1 when no adapter works.
 *
 *   node probe.mjs --out probe.json
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '@aft/aft-core';
import { checkMatMul, seededMatrix } from './check';

const { values } = parseArgs({ options: { out: { type: 'string' } } });
const report: Record<string, unknown> = { probe: 'adapter', errors: [] as string[] };
const errors = report['errors'] as string[];
const t0 = performance.now();

function attempt<T>(what: string, f: () => T): T | null {
  try {
    return f();
  } catch (e) {
    errors.push(`${what}: ${(e as Error).message.split('\n')[0]}`);
    return null;
  }
}

const read = (f: string) => attempt(f, () => readFileSync(f, 'utf8'));

// the host: what decides whether Dawn (glibc ≥ 2.34) and NVIDIA's Vulkan driver can load at all
const osRelease = Object.fromEntries(
  (read('/etc/os-release') ?? '')
    .split('\n')
    .map((l) => l.match(/^(\w+)="?([^"]*)"?$/))
    .filter((m): m is RegExpMatchArray => m !== null)
    .map((m) => [m[1], m[2]]),
);
const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
report['host'] = {
  node: process.version,
  arch: process.arch,
  os: osRelease['PRETTY_NAME'] ?? null,
  kernel: attempt('uname', () => execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()),
  glibc: header?.glibcVersionRuntime ?? null,
};

// the NVIDIA kernel driver and nvidia-smi's view of the GPUs (absent on a machine without one: not an error)
let smi: string | null = null;
try {
  smi = execFileSync(
    'nvidia-smi',
    ['--query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit', '--format=csv,noheader'],
    { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'pipe'] },
  );
} catch (e) {
  if ((e as { code?: string }).code !== 'ENOENT') errors.push(`nvidia-smi: ${(e as Error).message.split('\n')[0]}`);
}
report['nvidia'] = {
  kernelDriver: existsSync('/proc/driver/nvidia/version')
    ? (read('/proc/driver/nvidia/version') ?? '').split('\n')[0]
    : null,
  smi: smi?.trim().split('\n') ?? null,
};

// the Vulkan drivers the loader reads: VK_ICD_FILENAMES / VK_DRIVER_FILES, else its search folders
const ICD_DIRS = [
  ...(process.env['XDG_CONFIG_DIRS'] ?? '/etc/xdg').split(':').map((d) => join(d, 'vulkan/icd.d')),
  '/etc/vulkan/icd.d',
  ...(process.env['XDG_DATA_DIRS'] ?? '/usr/local/share:/usr/share').split(':').map((d) => join(d, 'vulkan/icd.d')),
];
const named = process.env['VK_DRIVER_FILES'] || process.env['VK_ICD_FILENAMES'];
const icdPaths = named
  ? named.split(delimiter).filter(Boolean)
  : ICD_DIRS.flatMap((d) => (existsSync(d) ? readdirSync(d).map((f) => join(d, f)) : []));
report['vulkan'] = {
  env: Object.fromEntries(
    ['VK_ICD_FILENAMES', 'VK_DRIVER_FILES', 'LD_LIBRARY_PATH', 'NVIDIA_VISIBLE_DEVICES', 'NVIDIA_DRIVER_CAPABILITIES']
      .filter((k) => process.env[k] !== undefined)
      .map((k) => [k, process.env[k]]),
  ),
  /** Where run.sh found (or wrote) NVIDIA's ICD file. */
  nvidiaIcd: process.env['GPU_CHECK_NVIDIA_ICD'] ?? null,
  icdFiles: icdPaths.map((path) => {
    const j = attempt(path, () => JSON.parse(readFileSync(path, 'utf8')) as { ICD?: Record<string, string> });
    return { path, libraryPath: j?.ICD?.['library_path'] ?? null, apiVersion: j?.ICD?.['api_version'] ?? null };
  }),
};

// every adapter Dawn offers, by power preference (a GPU machine may also show a software one)
interface Adapter {
  info: Record<string, unknown>;
  features: Iterable<string>;
  limits: Record<string, number>;
}
const adapters: Record<string, unknown>[] = [];
try {
  const { create } = (await import('webgpu')) as unknown as {
    create: (flags: string[]) => { requestAdapter(o: object): Promise<Adapter | null> };
  };
  const gpu = create([]);
  for (const powerPreference of ['high-performance', 'low-power']) {
    const a = await gpu.requestAdapter({ powerPreference });
    if (!a) continue;
    const info: Record<string, unknown> = {};
    for (const k in a.info) if (typeof a.info[k] !== 'object') info[k] = a.info[k];
    const same = adapters.find((x) => JSON.stringify(x['info']) === JSON.stringify(info));
    if (same) {
      adapters.push({ powerPreference, sameAs: same['powerPreference'] });
      continue;
    }
    const limits: Record<string, number> = {};
    for (const k in a.limits) limits[k] = a.limits[k]!;
    adapters.push({ powerPreference, info, features: [...a.features].sort(), limits });
  }
  if (adapters.length === 0) errors.push('Dawn found no WebGPU adapter (its messages are in probe.log)');
} catch (e) {
  errors.push(`webgpu: ${(e as Error).message.split('\n')[0]}`);
}
report['adapters'] = adapters;

// the backend the trainer uses, initialised as a run would, and a matMul whose result is checked
let ok = false;
try {
  const t = performance.now();
  const backend = await initBackend('webgpu');
  report['backend'] = { ...backend, initSeconds: Number(((performance.now() - t) / 1000).toFixed(2)) };
  const n = 256;
  const [a, b] = [seededMatrix(n, n, 1), seededMatrix(n, n, 2)];
  const c = tf.matMul(tf.tensor2d(a, [n, n]), tf.tensor2d(b, [n, n]));
  const check = checkMatMul(a, b, (await c.data()) as Float32Array, n, n, n);
  report['matmulCheck'] = { n, ...check };
  ok = check.ok;
  if (!check.ok) errors.push(`a ${n}² matMul on webgpu is wrong (relative error ${check.maxRelError})`);
} catch (e) {
  errors.push(`backend webgpu: ${(e as Error).message.split('\n')[0]}`);
}

// which loader and drivers this process really mapped: the bundle's libvulkan, NVIDIA's or Mesa's driver
const maps = read('/proc/self/maps') ?? '';
report['loadedLibraries'] = [...new Set(maps.split('\n').map((l) => l.split(/\s+/)[5] ?? ''))]
  .filter((p) => /vulkan|nvidia|lvp|dawn\.node/i.test(p))
  .sort();
report['ok'] = ok;
report['seconds'] = Number(((performance.now() - t0) / 1000).toFixed(2));

const json = `${JSON.stringify(report, null, 2)}\n`;
if (values.out) writeFileSync(values.out, json);
else process.stdout.write(json);
process.exit(ok ? 0 : 1);
