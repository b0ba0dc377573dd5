import {
  encodeDeep,
  encodeNumber,
  LIMITS,
  metricKey,
  packPoints,
  sampleInput,
  type ArtifactInput,
  type RunStatus,
  type SampleInput,
  type TrackedRun,
} from '@aft/contracts';
import { TrackerError, type Transport } from './http';

export interface BatchOptions {
  /** Send when this many points are buffered (default and most: 10,000, what the server takes in one request). */
  batchPoints?: number;
  /** Send buffered points at least this often, in ms (default 1,000). */
  flushIntervalMs?: number;
  /** Requests in flight per run before `log` asks its caller to wait (default 4). */
  maxInFlight?: number;
  /**
   * Called once for each batch that was not stored: the server refused it (a 4xx other than 408/429), or it still
   * failed when the retries ran out. Without it, the next `flush` or `finish` throws it instead, once.
   */
  onError?: (err: TrackerError) => void;
}

export type SampleRow = Omit<SampleInput, 'score'> & { score?: number | null };

/** Points waiting to be sent, in the columnar wire form (each key name once per batch). */
interface PointBuffer {
  keys: string[];
  index: Map<string, number>;
  key: number[];
  step: number[];
  value: number[];
  time: number[];
}
const emptyBuffer = (): PointBuffer => ({ keys: [], index: new Map(), key: [], step: [], value: [], time: [] });

/** A summary with its non-finite numbers as the wire's strings ("NaN", "Infinity", "-Infinity"). */
const encodeSummary = (summary: Record<string, number | string | boolean | null>) =>
  Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, typeof v === 'number' ? encodeNumber(v) : v]));

/** Event details with their non-finite numbers, however deep, as the wire's strings. */
const encodeDetails = (details: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(details).map(([k, v]) => [k, encodeDeep(v)]));

/** Key names already validated in this process (validation runs once per name, not once per point). */
const validKeys = new Set<string>();

/** A run being tracked: buffers what is logged, sends it in batches, retries, and never sends a point twice in effect. */
export class Run {
  readonly id: string;
  readonly name: string;
  readonly project: string;
  readonly url: string;
  /** The run's config as stored (JSON), unparsed: its reader knows the schema. */
  readonly config: unknown;
  private points: PointBuffer = emptyBuffer();
  private samples: SampleInput[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  /** Batches not stored since the last `flush` reported them (when there is no `onError`). */
  private unreported: TrackerError[] = [];
  private readonly onError: ((err: TrackerError) => void) | undefined;
  private readonly timer: ReturnType<typeof setInterval>;
  private finished = false;
  private readonly batchPoints: number;
  private readonly maxInFlight: number;

  constructor(
    info: TrackedRun,
    baseUrl: string,
    private readonly transport: Transport,
    opts: BatchOptions = {},
    private readonly onFinish: (run: Run) => void = () => undefined,
  ) {
    this.id = info.id;
    this.name = info.name;
    this.project = info.project.name;
    this.config = info.config;
    this.url = `${baseUrl.replace(/\/+$/, '')}/runs/${info.id}`;
    this.batchPoints = Math.min(opts.batchPoints ?? LIMITS.pointsPerBatch, LIMITS.pointsPerBatch);
    this.maxInFlight = opts.maxInFlight ?? 4;
    this.onError = opts.onError;
    this.timer = setInterval(() => this.send(), opts.flushIntervalMs ?? 1_000);
    this.timer.unref?.();
  }

  /**
   * Logs metrics at a step: `run.log({ loss: 0.7, 'eval/acc': 0.31 }, step)`. NaN and ±Infinity are kept.
   * Returns at once unless too many batches are in flight; awaiting it gives backpressure. It never rejects:
   * a batch that is not stored is reported once, to `onError` or by the next `flush` or `finish`.
   */
  log(metrics: Record<string, number>, step: number, time: number = Date.now()): Promise<void> {
    this.assertOpen();
    if (!Number.isInteger(step) || step < 0 || step > LIMITS.maxStep) {
      throw new TypeError(`step must be an integer in [0, ${LIMITS.maxStep}], got ${step}`);
    }
    const t = Math.round(time);
    if (!(t >= 0 && t <= LIMITS.maxTimeMs))
      throw new TypeError(`time must be milliseconds since the epoch, got ${time}`);
    const buf = this.points;
    for (const key in metrics) {
      const value = metrics[key]!;
      if (typeof value !== 'number') throw new TypeError(`metric "${key}" must be a number, got ${typeof value}`);
      if (!validKeys.has(key)) {
        const k = metricKey.safeParse(key);
        if (!k.success) throw new TypeError(`metric key "${key}": ${k.error.issues[0]?.message}`);
        validKeys.add(key);
      }
      let k = buf.index.get(key);
      if (k === undefined) {
        buf.index.set(key, (k = buf.keys.length));
        buf.keys.push(key);
      }
      buf.key.push(k);
      buf.step.push(step);
      buf.value.push(value);
      buf.time.push(t);
    }
    if (buf.key.length >= this.batchPoints || buf.keys.length >= LIMITS.keysPerBatch) this.send();
    return this.inFlight.size >= this.maxInFlight ? Promise.race(this.inFlight) : Promise.resolve();
  }

  /**
   * Logs sampled completions (buffered; sent in batches of up to 1,000). Checked here against what the server
   * stores: a row it would refuse (a NUL in a completion, a field too long) throws, naming the row and field, and
   * none of the call's rows is taken, so one bad row never costs a whole batch of good ones.
   */
  logSamples(rows: readonly SampleRow[]): void {
    this.assertOpen();
    const encoded = rows.map((r) => ({
      ...r,
      score: r.score === undefined || r.score === null ? r.score : encodeNumber(r.score),
    }));
    encoded.forEach((r, i) => {
      const ok = sampleInput.safeParse(r);
      if (!ok.success) {
        const issue = ok.error.issues[0]!;
        const field = issue.path.join('.') || 'row';
        throw new TypeError(`sample ${i}: ${field}: ${issue.message}; no sample of this call was taken`);
      }
    });
    this.samples.push(...encoded);
    if (this.samples.length >= LIMITS.samplesPerBatch) this.send();
  }

  /** Registers an artifact (checkpoint, sample set, …) the run produced; resolves to its id. */
  async logArtifact(meta: Omit<ArtifactInput, 'runId'>): Promise<{ id: string }> {
    this.assertOpen();
    return this.transport.call('artifacts.register', { ...meta, runId: this.id });
  }

  /** Records an event, e.g. `degradation-detected` with its step and evidence. */
  async logEvent(kind: string, step?: number, details?: Record<string, unknown>): Promise<void> {
    this.assertOpen();
    await this.transport.call('events.log', { runId: this.id, kind, step, details: encodeDetails(details ?? {}) });
  }

  /** Merges final metrics into the run's summary (what tables sort by). */
  async setSummary(summary: Record<string, number | string | boolean | null>): Promise<void> {
    this.assertOpen();
    await this.transport.call('runs.setSummary', { id: this.id, summary: encodeSummary(summary) });
  }

  /** The value a metric has at a step (what a resumed trainer continues a running total from), or null. */
  async valueAt(key: string, step: number): Promise<number | null> {
    const [series] = await this.transport.call('metrics.series', {
      runIds: [this.id],
      keys: [key],
      minStep: step,
      maxStep: step,
      buckets: 10,
    });
    const v = series?.mode === 'raw' && series.steps[0] === step ? series.values[0] : undefined;
    return typeof v === 'number' ? v : null;
  }

  /**
   * Sends everything buffered and waits for every request in flight. Throws, once, if batches were not stored since
   * the last flush (and there is no `onError`); the run stays usable: later batches are sent as usual.
   */
  async flush(): Promise<void> {
    this.send();
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
    const lost = this.unreported.splice(0);
    if (lost.length === 1) throw lost[0];
    if (lost.length > 1) {
      const first = lost[0]!;
      const all = lost.map((e) => e.message).join('; ');
      throw new TrackerError(`${lost.length} batches were not stored: ${all}`, first.status, first.code);
    }
  }

  /** Flushes, then marks the run finished. Safe to call twice. */
  async finish(
    status: Extract<RunStatus, 'succeeded' | 'failed' | 'canceled'> = 'succeeded',
    error?: string,
  ): Promise<void> {
    if (this.finished) return;
    clearInterval(this.timer);
    try {
      await this.flush();
    } finally {
      this.finished = true;
      this.onFinish(this);
      await this.transport.call('runs.setStatus', { id: this.id, status, error });
    }
  }

  get isFinished(): boolean {
    return this.finished;
  }

  private assertOpen() {
    if (this.finished) throw new Error(`run ${this.id} is finished; start a new one with init()`);
  }

  private send(): void {
    const buf = this.points;
    if (buf.key.length) {
      this.points = emptyBuffer();
      for (let off = 0; off < buf.key.length; off += this.batchPoints) {
        const end = off + this.batchPoints;
        // binary columns (libs/contracts/src/packed-points.ts): no number is formatted here or parsed there
        const packed = packPoints({
          keys: buf.keys,
          key: buf.key.slice(off, end),
          step: buf.step.slice(off, end),
          value: buf.value.slice(off, end),
          time: buf.time.slice(off, end),
        });
        this.track(this.transport.call('metrics.log', { runId: this.id, packed }), `${packed.n} points`);
      }
    }
    while (this.samples.length) {
      const rows = this.samples.splice(0, LIMITS.samplesPerBatch);
      this.track(this.transport.call('samples.log', { runId: this.id, rows }), `${rows.length} samples`);
    }
  }

  /** Waits for a batch in the background; one that is not stored is reported once and never blocks later ones. */
  private track(p: Promise<unknown>, what: string): void {
    const q: Promise<void> = p.then(
      () => undefined,
      (e: unknown) => {
        const cause = e instanceof TrackerError ? e : new TrackerError(String(e), 0, 'UNKNOWN');
        const message = `${what} of run ${this.id} were not stored: ${cause.message}`;
        const err = new TrackerError(message, cause.status, cause.code);
        if (!this.onError) this.unreported.push(err);
        else {
          try {
            this.onError(err);
          } catch {
            // the caller's handler failing must not turn into an unhandled rejection here
          }
        }
      },
    );
    const done = q.finally(() => this.inFlight.delete(done));
    this.inFlight.add(done);
  }
}
