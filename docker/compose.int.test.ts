import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const FILE = resolve(import.meta.dirname, 'compose.yml');

/** What of a service the MinIO check reads, from the normalised file. */
interface Service {
  image?: string;
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  entrypoint?: string[];
  environment?: Record<string, string>;
  container_name?: string;
  ports?: unknown[];
}

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

  it('keeps artifacts in a MinIO bucket made at start, which web and every worker use and wait for', () => {
    const yaml = execFileSync('docker-compose', ['-f', FILE, '--profile', 'gpu', 'config'], { encoding: 'utf8' });
    const json = execFileSync(
      'python3',
      ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'],
      { input: yaml, encoding: 'utf8' },
    );
    const cfg = JSON.parse(json) as { services: Record<string, Service>; volumes: Record<string, unknown> };
    const minio = cfg.services['minio']!;
    const bucket = cfg.services['minio-bucket']!;
    expect(minio.image).toMatch(/^minio\/minio/);
    expect(minio.volumes).toContainEqual(expect.stringMatching(/^miniodata:\/data/));
    expect(cfg.volumes).toHaveProperty('miniodata');
    expect(minio.healthcheck?.test).toEqual(['CMD', 'mc', 'ready', 'local']);
    expect(bucket.image).toMatch(/^minio\/mc/);
    expect(bucket.depends_on).toEqual({ minio: { condition: 'service_healthy' } });
    expect(bucket.entrypoint?.join(' ')).toMatch(/mb --ignore-existing aft\/aft-artifacts$/);
    const root = minio.environment!;
    expect(bucket.environment?.['MC_HOST_aft']).toBe(
      `http://${root['MINIO_ROOT_USER']}:${root['MINIO_ROOT_PASSWORD']}@minio:9000`,
    );
    for (const svc of ['web', 'worker', 'worker-gpu']) {
      const s = cfg.services[svc]!;
      expect(s.environment, svc).toMatchObject({
        AFT_ARTIFACT_URL: 's3://aft-artifacts/lab',
        AWS_ENDPOINT_URL: 'http://minio:9000',
        AWS_REGION: expect.any(String),
        AWS_ACCESS_KEY_ID: root['MINIO_ROOT_USER'],
        AWS_SECRET_ACCESS_KEY: root['MINIO_ROOT_PASSWORD'],
      });
      expect(s.depends_on?.['minio-bucket'], svc).toEqual({ condition: 'service_completed_successfully' });
    }
    // several workers on one host: `--scale worker=N` needs a service without a fixed name or published port
    expect(cfg.services['worker']).not.toHaveProperty('container_name');
    expect(cfg.services['worker']).not.toHaveProperty('ports');
  });
});
