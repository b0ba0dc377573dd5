/**
 * What every alert test runs on: a fresh database, the run notifier, a job producer on a queue of its own (retries
 * 50 ms, 100 ms, … apart instead of seconds), the worker's alert consumer calling the delivery API in-process, and a
 * webhook receiver on 127.0.0.1 (alert-receiver.ts).
 */
import { RunNotifier } from '@aft/db';
import { createTestDatabase } from '@aft/db/testing';
import {
  alertsQueueName,
  createAlertWorker,
  createRedis,
  dropTestQueues,
  JobProducer,
  testQueueName,
} from '@aft/queue';
import { alertDeliveryApi } from '../src';
import { startReceiver } from './alert-receiver';

/** The dashboard's address in the links of the messages. */
export const DASHBOARD = 'https://lab.example.org';

export async function startAlertStack() {
  const t = await createTestDatabase();
  const notifier = new RunNotifier(t.url);
  const producer = new JobProducer(createRedis('redis://127.0.0.1:6379', 'worker'), testQueueName(), {
    backoffMs: 50,
  });
  const worker = createAlertWorker(
    createRedis('redis://127.0.0.1:6379', 'worker'),
    alertsQueueName(producer.queueName),
    alertDeliveryApi(t.db, DASHBOARD),
    { allowPrivate: true, timeoutMs: 2_000 },
  );
  const receiver = await startReceiver();
  return {
    t,
    notifier,
    producer,
    worker,
    receiver,
    async close() {
      await worker.close();
      await dropTestQueues(producer);
      await receiver.close();
      await notifier.close();
      await t.drop();
    },
  };
}
