/**
 * A sweep parent's release job: it runs once its child, the VFT job, has finished (BullMQ flow). If the parent
 * succeeded it enqueues the alignment runs waiting for it; otherwise it fails them with the reason.
 */
import type { Job } from 'bullmq';
import { releaseJobPayload, trainResult, type JobProducer } from '@aft/queue';
import { Transport } from '@aft/tracker';

/** `trackerUrl`: the platform's API; each waiting run is failed with its own run token. */
export async function processRelease(
  job: Job,
  producer: JobProducer,
  trackerUrl: string,
): Promise<{ released: number }> {
  const release = releaseJobPayload.parse(job.data);
  const values = Object.values(await job.getChildrenValues()).map((v) => trainResult.safeParse(v));
  const ok = values.some((v) => v.success && v.data.status === 'succeeded');
  if (ok) {
    await producer.enqueueLanes(release);
    return { released: release.runs.length };
  }
  const failures = Object.values(await job.getIgnoredChildrenFailures());
  const why = failures.length
    ? `failed: ${failures[0]}`
    : values[0]?.success
      ? values[0].data.status
      : 'did not finish';
  for (const r of release.runs) {
    // a run canceled meanwhile (a canceled sweep cancels its parent too) has no token left, and stays canceled
    const api = new Transport({ url: trackerUrl, apiKey: r.runToken });
    const cur = await api.call('runs.get', { id: r.runId }).catch((e: Error & { code?: string }) => {
      if (e.code === 'UNAUTHORIZED' || e.code === 'NOT_FOUND') return null;
      throw e;
    });
    if (cur?.status !== 'queued') continue;
    await api.call('runs.setStatus', {
      id: r.runId,
      status: 'failed',
      error: `parent VFT run ${release.parentRunId} ${why}`,
    });
  }
  return { released: 0 };
}
