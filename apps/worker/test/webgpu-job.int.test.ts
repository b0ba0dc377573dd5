/**
 * A GPU job on webgpu (issue 18): a worker started with AFT_WORKER_GPUS=1 trains a tiny VFT run that asked for a GPU
 * in a job process on AFT_BACKEND=webgpu, to success, and the run records the backend and the adapter it trained on.
 *
 * Needs Vulkan: a GPU driver, or Mesa's lavapipe from `bash tools/install-lavapipe.sh` (found in tmp/lavapipe
 * without exporting anything). Where neither is present the test skips and says why — unless CI=true or
 * AFT_REQUIRE_WEBGPU=1, where that is a failure (as libs/aft-core/test/webgpu-parity.int.test.ts).
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { storedPoints } from '@aft/db/testing';
import { gpuQueueName } from '@aft/queue';
import { finished, ROOT, startStack, VFT_OVERRIDES, type Stack } from './gpu-stack';

vi.setConfig({ testTimeout: 240_000 });

const LAVAPIPE = join(ROOT, 'tmp/lavapipe/root');
const ICD_DIRS = ['/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/usr/share/vulkan/icd.d'];

/** The Vulkan variables of the worker: the lavapipe of tools/install-lavapipe.sh when no driver is configured. */
function vulkanEnv(): { env: Record<string, string>; software: boolean } | null {
  if (process.env['VK_ICD_FILENAMES'] || process.env['VK_DRIVER_FILES']) return { env: {}, software: false };
  const icd = join(LAVAPIPE, 'usr/share/vulkan/icd.d/lvp_icd.json');
  if (existsSync(icd)) {
    const lib = join(LAVAPIPE, 'usr/lib/x86_64-linux-gnu');
    const ld = process.env['LD_LIBRARY_PATH'];
    return { env: { VK_ICD_FILENAMES: icd, LD_LIBRARY_PATH: ld ? `${lib}:${ld}` : lib }, software: true };
  }
  const system = ICD_DIRS.some((d) => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.json')));
  return system ? { env: {}, software: false } : null;
}

function unavailable(): string | null {
  try {
    createRequire(join(ROOT, 'package.json')).resolve('webgpu');
  } catch {
    return 'the optional package "webgpu" is not installed';
  }
  return vulkanEnv() ? null : 'no Vulkan driver: run `bash tools/install-lavapipe.sh`';
}

const why = unavailable();
const required = process.env['CI'] === 'true' || process.env['AFT_REQUIRE_WEBGPU'] === '1';
if (why && !required) console.warn(`webgpu worker job test skipped: ${why}`);

describe.skipIf(why !== null && !required)('a GPU job on webgpu', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack('webgpu-job');
  });
  afterAll(() => s?.close());

  it('trains a tiny VFT run to success on webgpu in the GPU pool, recording the adapter', async () => {
    expect(why, 'webgpu is required here (CI=true or AFT_REQUIRE_WEBGPU=1)').toBeNull();
    const vulkan = vulkanEnv()!;
    // AFT_BACKEND unset: the GPU pool chooses webgpu (AFT_GPU_BACKEND's default), not the operator
    const w = s.startWorker({
      ...vulkan.env,
      AFT_WORKER_GPUS: '1',
      AFT_BACKEND: undefined,
      AFT_GPU_BACKEND: undefined,
    });
    const { runId } = await s.call<{ runId: string }>('runs.launch', {
      kind: 'vft',
      project: 'webgpu-job',
      config: { preset: 'tiny', seed: 1, steps: 2, overrides: VFT_OVERRIDES },
      resources: { gpu: 1 },
    });
    const run = await s.until('the webgpu run', async () => {
      const r = await s.getRun(runId);
      return finished(r.status) ? r : null;
    });
    expect([run.status, run.error], w.log.slice(-20).join('\n')).toEqual(['succeeded', null]);
    expect(run.backend).toBe('webgpu');
    expect(run.config).toMatchObject({
      backend: 'webgpu',
      'backend.provider': '@tensorflow/tfjs-backend-webgpu',
      'worker.queue': gpuQueueName(s.queue),
      'worker.host': hostname(),
    });
    expect(run.config['backend.adapter']).toMatch(/\w/);
    expect(run.config['backend.adapter.maxStorageBufferBindingSize']).toMatch(/^[1-9]\d*$/);
    if (vulkan.software) expect(run.config['backend.adapter.software']).toBe('true');
    // it trained: a loss for each step, and a test evaluation
    const loss = (await storedPoints(s.t.db, { runId })).filter((p) => p.key === 'train/loss');
    expect(loss).toHaveLength(2);
    for (const { value } of loss) expect(Number.isFinite(value)).toBe(true);
    const summary = (await s.call<{ summary: Record<string, unknown> }>('runs.get', { id: runId }, 'GET')).summary;
    expect(summary).toHaveProperty('test/task_accuracy');
  });
});
