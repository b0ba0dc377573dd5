/**
 * The GPU worker (issue 18, docker/Dockerfile.worker-gpu): WebGPU through NVIDIA's Vulkan driver, not tfjs-node-gpu.
 * Without a Docker engine or a GPU here, what can be checked is what the engine and the NVIDIA container toolkit
 * would be given: docker-compose's normalised `gpu` profile (read as data through PyYAML, which docker-compose v1
 * itself runs on) and the Dockerfile's instructions.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const FILE = resolve(import.meta.dirname, 'compose.yml');

interface Service {
  profiles?: string[];
  runtime?: string;
  environment?: Record<string, string | number>;
  deploy?: {
    resources?: {
      reservations?: { devices?: { driver?: string; count?: unknown; capabilities?: string[] }[] };
    };
  };
}

function composeConfig(...args: string[]): { services: Record<string, Service> } {
  const yaml = execFileSync('docker-compose', ['-f', FILE, ...args, 'config'], { encoding: 'utf8' });
  const json = execFileSync(
    'python3',
    ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'],
    { input: yaml, encoding: 'utf8' },
  );
  return JSON.parse(json) as { services: Record<string, Service> };
}

describe('the gpu profile of docker/compose.yml', () => {
  const cfg = composeConfig('--profile', 'gpu');
  const gpu = cfg.services['worker-gpu']!;

  it('starts worker-gpu only with --profile gpu, and the CPU services without it', () => {
    expect(gpu.profiles).toEqual(['gpu']);
    for (const s of ['postgres', 'redis', 'web', 'worker']) expect(cfg.services[s]!.profiles, s).toBeUndefined();
  });

  it('reserves one NVIDIA GPU with the graphics capability, which brings the Vulkan driver', () => {
    const devices = gpu.deploy?.resources?.reservations?.devices ?? [];
    expect(devices).toHaveLength(1);
    const [d] = devices;
    expect(d!.driver).toBe('nvidia');
    // docker-compose v1 passes count to the engine only as an integer or "all" (a string "1" is refused at `up`)
    expect(d!.count).toBe(1);
    expect(d!.capabilities).toEqual(expect.arrayContaining(['gpu', 'graphics', 'compute', 'utility']));
    // device requests need no `runtime: nvidia` (which fails where that runtime is not registered with the engine)
    expect(gpu.runtime).toBeUndefined();
  });

  it('runs a GPU worker on webgpu with the driver capabilities Vulkan needs', () => {
    const env = gpu.environment ?? {};
    expect(String(env['AFT_WORKER_GPUS'])).toBe('1');
    expect(env['AFT_GPU_BACKEND']).toBe('webgpu');
    expect(String(env['NVIDIA_DRIVER_CAPABILITIES']).split(',')).toEqual(
      expect.arrayContaining(['graphics', 'compute', 'utility']),
    );
    // the CPU worker stays off the GPU queue
    expect(cfg.services['worker']!.environment?.['AFT_WORKER_GPUS']).toBeUndefined();
  });
});

describe('docker/Dockerfile.worker-gpu', () => {
  const text = readFileSync(resolve(import.meta.dirname, 'Dockerfile.worker-gpu'), 'utf8');
  const instructions = text.split('\n').filter((l) => l && !l.startsWith('#'));
  const env = Object.fromEntries(
    instructions
      .filter((l) => l.startsWith('ENV '))
      .flatMap((l) => l.slice(4).trim().split(/\s+/))
      .map((kv) => kv.split('=') as [string, string]),
  );

  it('is WebGPU on Vulkan, not tfjs-node-gpu on CUDA', () => {
    const code = instructions.join('\n');
    expect(code).not.toMatch(/tfjs-node-gpu|nvidia\/cuda|AFT_BACKEND=tensorflow/);
    expect(code).toMatch(/^FROM node:20-bookworm-slim$/m);
    // the loader dawn.node opens; the driver itself is the host's, mounted by the toolkit
    expect(code).toMatch(/apt-get install[^\n]*\blibvulkan1\b/);
    expect(code).toMatch(/require\.resolve\('webgpu'\)/);
    expect(code).toMatch(/require\.resolve\('@tensorflow\/tfjs-backend-webgpu'\)/);
  });

  it('asks the toolkit for graphics and starts a GPU worker on webgpu', () => {
    expect(env['NVIDIA_DRIVER_CAPABILITIES']!.split(',')).toEqual(expect.arrayContaining(['graphics', 'compute']));
    expect(env['AFT_WORKER_GPUS']).toBe('1');
    expect(env['AFT_GPU_BACKEND']).toBe('webgpu');
  });

  it("enters through the script that finds (or writes) NVIDIA's ICD file, then runs the worker", () => {
    const entry = instructions.find((l) => l.startsWith('ENTRYPOINT '))!;
    const argv = JSON.parse(entry.slice('ENTRYPOINT '.length)) as string[];
    expect(argv[0]).toBe('bash');
    expect(existsSync(resolve(ROOT, argv[1]!)), argv[1]).toBe(true);
    const cmd = JSON.parse(instructions.find((l) => l.startsWith('CMD '))!.slice(4)) as string[];
    expect(cmd.join(' ')).toBe('npx tsx apps/worker/src/main.ts');
    // the worker it runs exists where the image copies the repository to
    expect(existsSync(resolve(ROOT, 'apps/worker/src/main.ts'))).toBe(true);
  });
});
