'use client';
import Link from 'next/link';
import { useEffect, useState } from 'react';
import type { RouterOutputs } from '@aft/api';
import { trpc } from '../lib/trpc';
import { fmtDuration } from '../lib/format';
import { Empty } from './ui';

/** The fleet as fleet.list returns it (libs/api router/fleet.ts). */
export type FleetData = RouterOutputs['fleet']['list'];
type FleetWorker = FleetData['workers'][number];
type FleetJob = FleetWorker['jobs'][number];

const POLL_MS = 3_000;
const BADGE: Record<FleetWorker['status'], string> = { alive: 'succeeded', stale: 'queued', gone: 'failed' };

/** "3s ago", against the server's clock when it answered, moved on by the time since. */
function ago(at: number, data: FleetData, receivedAt: number, now: number): string {
  return `${fmtDuration(Math.max(0, data.now - at + (now - receivedAt)))} ago`;
}

/** A stalled job's run: how long since it last reported (its trainer died with the worker). */
type Ago = (at: number) => string;

function JobLine({ job, ago: since }: { job: FleetJob; ago: Ago }) {
  const where =
    job.state === 'resumed' && job.elsewhere
      ? ` on ${job.elsewhere.host} (pid ${job.elsewhere.pid})`
      : job.state === 'released'
        ? ` (${job.runStatus})`
        : '';
  return (
    <li data-testid="worker-job" data-state={job.state}>
      <Link href={`/runs/${job.runId}`}>{job.runName}</Link>{' '}
      <span className={job.state === 'stalled' ? 'bad-text' : 'muted'}>
        {job.state}
        {where}
        {job.queue.endsWith('-gpu') ? ' · gpu' : ''}
        {job.state === 'stalled' && job.runHeartbeatAt ? ` · last report ${since(job.runHeartbeatAt)}` : ''}
      </span>
    </li>
  );
}

function Jobs({ w, ago: since }: { w: FleetWorker; ago: Ago }) {
  if (!w.jobs.length && !w.otherJobs) return <span className="muted">idle</span>;
  return (
    <ul style={{ margin: 0, paddingLeft: 16 }}>
      {w.jobs.map((j) => (
        <JobLine key={j.runId} job={j} ago={since} />
      ))}
      {w.otherJobs > 0 ? (
        <li className="muted" data-testid="worker-other-jobs">
          busy with {w.otherJobs} other {w.otherJobs === 1 ? 'job' : 'jobs'}
        </li>
      ) : null}
    </ul>
  );
}

function Backends({ w }: { w: FleetWorker }) {
  return (
    <>
      {w.pools.map((p) => (
        <div key={p.kind}>
          {p.kind}: {p.backend ?? 'automatic'}
          {p.adapter ? <div className="muted mono">{p.adapter}</div> : null}
        </div>
      ))}
    </>
  );
}

/** The Workers page's table, polled every few seconds: a dead worker turns gone, its jobs stalled, then resumed. */
export function WorkersTable({ initial }: { initial: FleetData }) {
  const [data, setData] = useState(initial);
  const [receivedAt, setReceivedAt] = useState(() => Date.now());
  const [now, setNow] = useState(() => Date.now());
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let stop = false;
    const poll = async () => {
      try {
        const next = await trpc.fleet.list.query();
        if (stop) return;
        setData(next);
        setReceivedAt(Date.now());
        setError(null);
      } catch (e) {
        if (!stop) setError((e as Error).message);
      }
    };
    const p = setInterval(() => void poll(), POLL_MS);
    const tick = setInterval(() => setNow(Date.now()), 1_000);
    return () => {
      stop = true;
      clearInterval(p);
      clearInterval(tick);
    };
  }, []);

  const since: Ago = (at) => ago(at, data, receivedAt, now);
  if (!data.configured)
    return <Empty>This server has no job queue (REDIS_URL is not set): there are no workers.</Empty>;
  return (
    <>
      {error ? <div className="warnbox">Could not refresh: {error}</div> : null}
      {data.workers.length === 0 ? (
        <Empty>No worker has registered in the last hour. Start one with `npm run worker`.</Empty>
      ) : (
        <table className="data" data-testid="workers-table">
          <thead>
            <tr>
              <th>Status</th>
              <th>Host</th>
              <th className="num">PID</th>
              <th>Backend</th>
              <th>Resources</th>
              <th>Jobs in hand</th>
              <th>Last seen</th>
              <th>Version</th>
            </tr>
          </thead>
          <tbody>
            {data.workers.map((w) => (
              <tr key={w.id} data-testid="worker-row" data-worker={w.id} data-status={w.status}>
                <td>
                  <span className={`badge ${BADGE[w.status]}`}>{w.status}</span>
                </td>
                <td className="mono">{w.host}</td>
                <td className="num">{w.pid}</td>
                <td>
                  <Backends w={w} />
                </td>
                <td>
                  {w.resources.cores} cores · {Math.round(w.resources.memoryMb / 1024)} GiB
                  <div className="muted">
                    {w.resources.concurrency} CPU {w.resources.concurrency === 1 ? 'job' : 'jobs'}
                    {w.resources.gpus ? ` · ${w.resources.gpus} GPU` : ''}
                  </div>
                </td>
                <td>
                  <Jobs w={w} ago={since} />
                </td>
                <td title={new Date(w.lastSeen).toISOString()}>{since(w.lastSeen)}</td>
                <td className="mono muted">{w.version}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {data.stalled.length || data.otherStalled ? (
        <div className="panel" data-testid="stalled-jobs" style={{ marginTop: 16 }}>
          <h2 style={{ marginTop: 0 }}>Stalled</h2>
          <div className="sub">
            Taken by a worker that stopped answering; a live worker takes them back once their lock expires, and they
            resume from their last checkpoint.
          </div>
          <ul>
            {data.stalled.map((j) => (
              <JobLine key={j.runId} job={j} ago={since} />
            ))}
            {data.otherStalled ? <li className="muted">and {data.otherStalled} of other teams</li> : null}
          </ul>
        </div>
      ) : null}
    </>
  );
}
