import { afterAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { createRedis, enqueueRun, testQueueName } from '../src';

const connection = createRedis('redis://127.0.0.1:6379', 'worker');
const queue = new Queue(testQueueName(), { connection });

afterAll(async () => {
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
});

describe('enqueueRun', () => {
  it('enqueues a run once however often it is called', async () => {
    await enqueueRun(queue, { runId: 'run-a', config: { lr: 1e-3 } });
    await enqueueRun(queue, { runId: 'run-a', config: { lr: 1e-3 } });
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 1 });
    const job = await queue.getJob('run-a');
    expect(job?.data).toEqual({ runId: 'run-a', config: { lr: 1e-3 } });
    expect(job?.opts.attempts).toBe(5);
  });

  it('rejects a payload that does not match the contract', async () => {
    await expect(enqueueRun(queue, { runId: '', config: {} })).rejects.toThrow(/runId/);
  });
});
