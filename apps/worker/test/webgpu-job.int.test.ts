/**
 * A GPU job on webgpu (issue 18): a worker started with AFT_WORKER_GPUS=1 trains a tiny VFT run that asked for a GPU
 * in a job process on AFT_BACKEND=webgpu, to success, and the run records the backend and the adapter it trained on.
 *
 * Needs Vulkan: a GPU driver, or Mesa's lavapipe from `bash tools/install-lavapipe.sh` (found in tmp/lavapipe
 * without exporting anything). Where neither is present the test skips and says why — unless CI=true or
 * AFT_REQUIRE_WEBGPU=1, where that is a failure (as libs/aft-core/test/webgpu-parity.int.test.ts).
 */
import { hostname } from 'node:os';
import { describe, expect, it, vi } from 'vitest';
import { lavapipe } from '@aft/aft-core';
import { storedPoints } from '@aft/db/testing';
import { gpuQueueName } from '@aft/queue';
import { QUICK_VFT_OVERRIDES, useStack } from './stack';

vi.setConfig({ testTimeout: 240_000 });

const vulkan = lavapipe.childEnv();
const why = lavapipe.unavailable(vulkan);
const { required } = lavapipe;
if (why && !required) console.warn(`webgpu worker job test skipped: ${why}`);

describe.skipIf(why !== null && !required)('a GPU job on webgpu', () => {
  const s = useStack('webgpu-job');

  it('trains a tiny VFT run to success on webgpu in the GPU pool, recording the adapter', async () => {
    expect(why, 'webgpu is required here (CI=true or AFT_REQUIRE_WEBGPU=1)').toBeNull();
    // AFT_BACKEND unset: the GPU pool chooses webgpu (AFT_GPU_BACKEND's default), not the operator
    const w = s.startWorker({
      // only these: the rest of `vulkan` is this process's environment, which would override the stack's
      VK_ICD_FILENAMES: vulkan['VK_ICD_FILENAMES'],
      LD_LIBRARY_PATH: vulkan['LD_LIBRARY_PATH'],
      AFT_WORKER_GPUS: '1',
      AFT_BACKEND: undefined,
      AFT_GPU_BACKEND: undefined,
    });
    const { runId } = await s.call<{ runId: string }>('runs.launch', {
      kind: 'vft',
      project: 'webgpu-job',
      config: { preset: 'tiny', seed: 1, steps: 2, overrides: QUICK_VFT_OVERRIDES },
      resources: { gpu: 1 },
    });
    const run = await s.untilFinished('the webgpu run', () => s.getRun(runId));
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
    if (vulkan['VK_ICD_FILENAMES'] === lavapipe.LVP_ICD) expect(run.config['backend.adapter.software']).toBe('true');
    // it trained: a loss for each step, and a test evaluation
    const loss = (await storedPoints(s.t.db, { runId })).filter((p) => p.key === 'train/loss');
    expect(loss).toHaveLength(2);
    for (const { value } of loss) expect(Number.isFinite(value)).toBe(true);
    const summary = (await s.call<{ summary: Record<string, unknown> }>('runs.get', { id: runId }, 'GET')).summary;
    expect(summary).toHaveProperty('test/task_accuracy');
  });
});
