import { afterAll, describe, expect, it } from 'vitest';
import { createRedis, JobProducer, testQueueName } from '../src';

const producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), testQueueName());
const runToken = 'aftrun_test';

afterAll(async () => {
  await producer.runs.obliterate({ force: true });
  await producer.control.obliterate({ force: true });
  await producer.close();
});

describe('JobProducer', () => {
  it('enqueues a run once however often it is called, with retries and exponential backoff', async () => {
    await producer.enqueueRun({ kind: 'vft', runId: 'run-a', runToken });
    await producer.enqueueRun({ kind: 'vft', runId: 'run-a', runToken });
    expect(await producer.runs.getJobCounts('waiting')).toEqual({ waiting: 1 });
    const job = await producer.runs.getJob('run-a');
    // the job names its run; the run's config lives only in its Postgres row (libs/queue/src/jobs.ts)
    expect(job?.data).toEqual({ kind: 'vft', runId: 'run-a', runToken });
    expect(job?.opts.attempts).toBe(6);
    expect(job?.opts.backoff).toEqual({ type: 'exponential', delay: 2000 });
  });

  it('rejects a payload that does not match the contract', async () => {
    await expect(producer.enqueueRun({ kind: 'vft', runId: '', runToken })).rejects.toThrow(/runId/);
    await expect(producer.enqueueRun({ kind: 'vft', runId: 'x', runToken: 'a-team-key' })).rejects.toThrow(/runToken/);
    await expect(producer.enqueueRun({ kind: 'align', runId: 'x', runToken } as never)).rejects.toThrow(/parentRunId/);
  });

  it('puts a sweep parent under its release job, and alignment runs in chained lanes', async () => {
    await producer.enqueueSweep([
      {
        vft: { kind: 'vft', runId: 'parent-1', runToken },
        release: { sweepId: 's1', parentRunId: 'parent-1', lanes: 2, runs: [] },
      },
    ]);
    const release = await producer.control.getJob('release-parent-1');
    expect(await release!.getState()).toBe('waiting-children');
    const child = await producer.runs.getJob('parent-1');
    expect(child!.parentKey).toContain('release-parent-1');

    await producer.enqueueLanes({
      sweepId: 's1',
      parentRunId: 'parent-1',
      lanes: 2,
      runs: ['a', 'b', 'c', 'd', 'e'].map((id) => ({ runId: `align-${id}`, runToken })),
    });
    // two lanes: a → c → e and b → d; only the first of each lane can start
    const states = Object.fromEntries(
      await Promise.all(
        ['a', 'b', 'c', 'd', 'e'].map(async (id) => [
          id,
          await (await producer.runs.getJob(`align-${id}`))!.getState(),
        ]),
      ),
    );
    expect(states).toEqual({
      a: 'waiting',
      b: 'waiting',
      c: 'waiting-children',
      d: 'waiting-children',
      e: 'waiting-children',
    });
  });
});
