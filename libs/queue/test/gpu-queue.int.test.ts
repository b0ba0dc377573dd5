/**
 * GPU jobs on real Redis (docs/architecture.md, "GPU jobs"): a job that asks for a GPU waits on `<queue>-gpu`, one
 * that does not on the CPU queue; a sweep's flows span both (a release job waits on a GPU parent; its alignment lanes
 * go where the release says); cancel finds a waiting job on either queue.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createRedis, dropTestQueues, gpuQueueName, JobProducer, testQueueName } from '../src';

const producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), testQueueName());
const runToken = 'aftrun_test';

afterAll(() => dropTestQueues(producer));

const stateOn = async (queue: 'runs' | 'gpu', id: string) => (await producer[queue].getJob(id))?.getState() ?? null;

describe('GPU jobs', () => {
  it('puts a run that asks for a GPU on the GPU queue and one that does not on the CPU queue', async () => {
    expect(producer.gpu.name).toBe(gpuQueueName(producer.queueName));
    await producer.enqueueRun({ kind: 'vft', runId: 'gpu-run', runToken }, { gpu: 1 });
    await producer.enqueueRun({ kind: 'vft', runId: 'cpu-run', runToken }, { gpu: 0 });
    await producer.enqueueRun({ kind: 'vft', runId: 'plain-run', runToken });
    expect([await stateOn('gpu', 'gpu-run'), await stateOn('runs', 'gpu-run')]).toEqual(['waiting', null]);
    expect([await stateOn('runs', 'cpu-run'), await stateOn('gpu', 'cpu-run')]).toEqual(['waiting', null]);
    expect(await stateOn('runs', 'plain-run')).toBe('waiting');
    // the GPU job keeps the CPU job's retries
    expect((await producer.gpu.getJob('gpu-run'))!.opts.attempts).toBe(6);
  });

  it('refuses resources beyond the bounds, naming the field', async () => {
    await expect(producer.enqueueRun({ kind: 'vft', runId: 'x', runToken }, { gpu: 2 })).rejects.toThrow(
      /gpu is at most 1/,
    );
  });

  it('puts a sweep parent on the GPU under its release job, and its alignment lanes on the CPU queue', async () => {
    await producer.enqueueSweep([
      {
        vft: { kind: 'vft', runId: 'gpu-parent', runToken },
        resources: { gpu: 1 },
        release: { sweepId: 's1', parentRunId: 'gpu-parent', lanes: 1, runs: [], resources: { gpu: 0 } },
      },
    ]);
    const release = await producer.control.getJob('release-gpu-parent');
    expect(await release!.getState()).toBe('waiting-children');
    const child = await producer.gpu.getJob('gpu-parent');
    expect(child!.parentKey).toContain('release-gpu-parent');
    expect(await producer.runs.getJob('gpu-parent')).toBeUndefined();
    // the release job counts the GPU child among its dependencies
    expect(await release!.getDependenciesCount()).toMatchObject({ unprocessed: 1 });

    await producer.enqueueLanes({
      sweepId: 's1',
      parentRunId: 'gpu-parent',
      lanes: 1,
      runs: ['a', 'b'].map((id) => ({ runId: `cpu-align-${id}`, runToken })),
    });
    await producer.enqueueLanes({
      sweepId: 's1',
      parentRunId: 'gpu-parent',
      lanes: 1,
      runs: ['a', 'b'].map((id) => ({ runId: `gpu-align-${id}`, runToken })),
      resources: { gpu: 1 },
    });
    // one lane each: a → b, b waiting on a, on the queue its release asked for
    expect([await stateOn('runs', 'cpu-align-a'), await stateOn('runs', 'cpu-align-b')]).toEqual([
      'waiting',
      'waiting-children',
    ]);
    expect([await stateOn('gpu', 'gpu-align-a'), await stateOn('gpu', 'gpu-align-b')]).toEqual([
      'waiting',
      'waiting-children',
    ]);
  });

  it('cancels a waiting job on the GPU queue', async () => {
    await producer.enqueueRun({ kind: 'vft', runId: 'gpu-cancel', runToken }, { gpu: 1 });
    await producer.cancel(['gpu-cancel']);
    expect(await producer.gpu.getJob('gpu-cancel')).toBeUndefined();
  });
});
