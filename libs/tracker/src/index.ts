import type { RunCreateInput } from '@aft/contracts';
import { Transport, TrackerError, type TransportOptions } from './http';
import { Run, type BatchOptions } from './run';
import { trackerEnv } from './env';

export { Run, type BatchOptions, type SampleRow } from './run';
export { TrackerError, Transport } from './http';

export type InitOptions = RunCreateInput &
  BatchOptions & {
    /** Server URL; defaults to $AFT_URL, then http://127.0.0.1:3000. */
    url?: string;
    /** API key; defaults to $AFT_API_KEY. */
    apiKey?: string;
    retryForMs?: number;
    fetch?: TransportOptions['fetch'];
    onRetry?: TransportOptions['onRetry'];
    /** Flush and close the run when the process exits or is interrupted (default true). */
    finishOnExit?: boolean;
  };

/** The server URL and API key: from the options, else $AFT_URL and $AFT_API_KEY. */
function credentials(opts: { url?: string | undefined; apiKey?: string | undefined }): { url: string; apiKey: string } {
  const apiKey = opts.apiKey ?? trackerEnv.apiKey();
  if (!apiKey) throw new TrackerError('no API key: pass apiKey or set AFT_API_KEY', 401, 'UNAUTHORIZED');
  return { url: opts.url ?? trackerEnv.url(), apiKey };
}

/** The retrying HTTP transport of `init` and `attach`. */
function transportFor(opts: {
  url?: string | undefined;
  apiKey?: string | undefined;
  retryForMs?: number | undefined;
  fetch?: TransportOptions['fetch'];
  onRetry?: TransportOptions['onRetry'];
}): { url: string; transport: Transport } {
  const c = credentials(opts);
  return {
    url: c.url,
    transport: new Transport({ ...c, retryForMs: opts.retryForMs, fetch: opts.fetch, onRetry: opts.onRetry }),
  };
}

const live = new Set<Run>();
let hooked = false;

/** On a normal exit runs still open are finished; on SIGINT/SIGTERM they are flushed and marked canceled. */
function hookExit() {
  if (hooked) return;
  hooked = true;
  process.on('beforeExit', () => {
    for (const r of [...live]) void r.finish('succeeded').catch(() => undefined);
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const handler = () => {
      const open = [...live];
      const deadline = new Promise((r) => setTimeout(r, 10_000).unref());
      void Promise.race([
        Promise.allSettled(open.map((r) => r.finish('canceled', `interrupted by ${sig}`))),
        deadline,
      ]).then(() => {
        process.removeListener(sig, handler);
        process.kill(process.pid, sig);
      });
    };
    process.on(sig, handler);
  }
}

/**
 * Starts a run: `const run = await init({ project: 'gsm8k', config: { lr: 3e-4 }, tags: ['aft'] })`.
 * Then `run.log({ loss }, step)`, `run.logSamples(rows)`, `run.logArtifact(meta)`, `run.setSummary(obj)`,
 * `await run.finish()`.
 */
export async function init(opts: InitOptions): Promise<Run> {
  const { url, transport } = transportFor(opts);
  const {
    url: _u,
    apiKey: _k,
    retryForMs: _r,
    fetch: _f,
    onRetry: _o,
    finishOnExit = true,
    batchPoints,
    flushIntervalMs,
    maxInFlight,
    onError,
    ...create
  } = opts;
  const info = await transport.call('runs.create', create);
  const batching = { batchPoints, flushIntervalMs, maxInFlight, onError };
  const run = new Run(info, url, transport, batching, (r) => live.delete(r));
  if (finishOnExit) {
    live.add(run);
    hookExit();
  }
  return run;
}

export type AttachOptions = BatchOptions & {
  runId: string;
  url?: string;
  apiKey?: string;
  /** The backend the trainer chose, recorded on the run. */
  backend?: string;
  /** Where the run trains (`backend.…`, `worker.…`), recorded as its params (runStartInput in @aft/contracts). */
  params?: Record<string, string>;
  retryForMs?: number;
  fetch?: TransportOptions['fetch'];
  onRetry?: TransportOptions['onRetry'];
};

/**
 * Takes up a run the platform queued (what a worker does), or resumes it after a crash. Resolves to null when the
 * run must not train: it was canceled or has already finished. The caller finishes the run itself.
 */
export async function attach(opts: AttachOptions): Promise<Run | null> {
  const { url, transport } = transportFor(opts);
  const started = await transport.call('runs.start', { id: opts.runId, backend: opts.backend, params: opts.params });
  if (!started.started) return null;
  const info = await transport.call('runs.get', { id: opts.runId });
  return new Run(info, url, transport, {
    batchPoints: opts.batchPoints,
    flushIntervalMs: opts.flushIntervalMs,
    maxInFlight: opts.maxInFlight,
    onError: opts.onError,
  });
}

export interface ExportOptions {
  /** Server URL; defaults to $AFT_URL. */
  url?: string;
  /** API key with the `read` scope; defaults to $AFT_API_KEY. */
  apiKey?: string;
  fetch?: typeof fetch;
}

/**
 * Downloads a project or a sweep as a .tar.gz archive (runs.jsonl, runs.csv, metrics/, samples/, events/) into
 * `file`, streaming: `await exportArchive({ projectId }, 'gsm8k.aft.tar.gz')`. Resolves with the bytes written.
 */
export async function exportArchive(
  what: { projectId: string } | { sweepId: string },
  file: string,
  opts: ExportOptions = {},
): Promise<number> {
  const { createWriteStream } = await import('node:fs');
  const { Readable } = await import('node:stream');
  const { pipeline } = await import('node:stream/promises');
  const { url, apiKey } = credentials(opts);
  const base = url.replace(/\/+$/, '');
  const q =
    'projectId' in what ? `project=${encodeURIComponent(what.projectId)}` : `sweep=${encodeURIComponent(what.sweepId)}`;
  const res = await (opts.fetch ?? fetch)(`${base}/api/export?${q}`, { headers: { 'x-api-key': apiKey } });
  if (!res.ok || !res.body) {
    // the export route's error body (libs/api/src/export.ts), or null when it sent none
    const j: { error?: { message?: string; code?: string } } | null = await res.json().catch(() => null);
    throw new TrackerError(
      j?.error?.message ?? `export failed: HTTP ${res.status}`,
      res.status,
      j?.error?.code ?? 'HTTP',
    );
  }
  let bytes = 0;
  // the same stream under two declarations: the DOM lib's fetch body and node:stream/web's (no async iterator)
  const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  body.on('data', (c: Buffer) => (bytes += c.length));
  await pipeline(body, createWriteStream(file));
  return bytes;
}
