import { afterAll, describe, expect, it } from 'vitest';
import { createRedis, JobProducer, testQueueName } from '../src';

const producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), testQueueName());
const vft = { preset: 'tiny' as const, seed: 1, overrides: {}, sampling: [] };
const runToken = 'aftrun_test';

afterAll(async () => {
  await producer.runs.obliterate({ force: true });
  await producer.control.obliterate({ force: true });
  await producer.close();
});

describe('JobProducer', () => {
  it('enqueues a run once however often it is called, with retries and exponential backoff', async () => {
    await producer.enqueueRun({ kind: 'vft', runId: 'run-a', runToken, config: vft });
    await producer.enqueueRun({ kind: 'vft', runId: 'run-a', runToken, config: vft });
    expect(await producer.runs.getJobCounts('waiting')).toEqual({ waiting: 1 });
    const job = await producer.runs.getJob('run-a');
    expect(job?.data).toEqual({ kind: 'vft', runId: 'run-a', runToken, config: vft });
    expect(job?.opts.attempts).toBe(6);
    expect(job?.opts.backoff).toEqual({ type: 'exponential', delay: 2000 });
  });

  it('rejects a payload that does not match the contract', async () => {
    await expect(producer.enqueueRun({ kind: 'vft', runId: '', runToken, config: vft })).rejects.toThrow(/runId/);
    await expect(producer.enqueueRun({ kind: 'vft', runId: 'x', runToken: 'a-team-key', config: vft })).rejects.toThrow(
      /runToken/,
    );
    await expect(
      producer.enqueueRun({ kind: 'vft', runId: 'x', runToken, config: { ...vft, preset: 'huge' as 'tiny' } }),
    ).rejects.toThrow(/preset/);
  });

  it('puts a sweep parent under its release job, and alignment runs in chained lanes', async () => {
    const align = { method: 'aft' as const, seed: 1, sampling: { k: 8, temperature: 0.8, questions: 10 } };
    await producer.enqueueSweep([
      {
        vft: { kind: 'vft', runId: 'parent-1', runToken, config: vft },
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
      runs: ['a', 'b', 'c', 'd', 'e'].map((id) => ({ runId: `align-${id}`, runToken, config: { ...align } as never })),
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
