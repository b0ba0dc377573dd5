import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadEnv } from '../apps/worker/src/env';

const FILE = resolve(import.meta.dirname, 'compose.yml');

/** A service's `environment:` from docker-compose's normalised output (a `KEY: value` map under the service). */
function environmentOf(config: string, service: string): Record<string, string> {
  const lines = config.split('\n');
  const start = lines.findIndex((l) => l === `  ${service}:`);
  expect(start, `service ${service}`).toBeGreaterThanOrEqual(0);
  const env: Record<string, string> = {};
  let inEnv = false;
  for (const l of lines.slice(start + 1)) {
    if (/^ {0,2}\S/.test(l)) break; // the next service
    if (/^ {4}\S/.test(l)) inEnv = l.trim() === 'environment:';
    else if (inEnv) {
      const m = l.match(/^ {6}([A-Z0-9_]+): ?(.*)$/);
      if (m) env[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
    }
  }
  return env;
}

describe('docker/compose.yml workers', () => {
  // Every team's runs are trained by any worker with its jobs' own run tokens: a worker needs no team key, and
  // its environment in the compose file alone must be a valid worker configuration pointing at the services.
  it.each(['worker', 'worker-gpu'])('%s starts from the compose file alone', (service) => {
    const out = execFileSync('docker-compose', ['-f', FILE, '--profile', 'gpu', 'config'], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] },
    });
    const env = environmentOf(out, service);
    const parsed = loadEnv(env);
    expect(new URL(parsed.REDIS_URL).hostname).toBe('redis');
    expect(new URL(parsed.AFT_URL).hostname).toBe('web');
    expect(parsed.AFT_ARTIFACT_DIR).toBe('/artifacts');
  });

  // the GPU queue's jobs go only to workers started with AFT_WORKER_GPUS (issue 18): worker-gpu's one GPU, on webgpu
  it('gives worker-gpu the GPU queue, one job at a time on webgpu, and the CPU worker none', () => {
    const out = execFileSync('docker-compose', ['-f', FILE, '--profile', 'gpu', 'config'], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] },
    });
    expect(loadEnv(environmentOf(out, 'worker-gpu'))).toMatchObject({ AFT_WORKER_GPUS: 1, AFT_GPU_BACKEND: 'webgpu' });
    expect(loadEnv(environmentOf(out, 'worker'))).toMatchObject({ AFT_WORKER_GPUS: 0 });
  });
});
