import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const FILE = resolve(import.meta.dirname, 'compose.yml');

describe('docker/compose.yml', () => {
  it('is a valid compose file with the services, health checks and volumes users need', () => {
    // docker-compose (Debian, v1) validates and normalises the file without a Docker engine.
    const out = execFileSync('docker-compose', ['-f', FILE, '--profile', 'gpu', 'config'], { encoding: 'utf8' });
    for (const svc of ['postgres:', 'redis:', 'web:', 'worker:', 'worker-gpu:']) expect(out).toContain(`  ${svc}`);
    expect(out).toMatch(/pg_isready/);
    expect(out).toMatch(/--appendonly[\s\S]*yes/);
    expect(out).toMatch(/condition: service_healthy/);
    expect(out).toMatch(/pgdata:/);
    // the GPU worker's device reservation (docker/worker-gpu.int.test.ts checks it in detail)
    expect(out).toMatch(/driver: nvidia/);
  });
});
