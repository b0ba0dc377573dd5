/**
 * The SDK's HTTP transport: tRPC procedures called as plain JSON over fetch, with retries and backoff. Which
 * procedures, with what input and output, is the table in @aft/contracts (procedures.ts): a call is checked at
 * compile time, and libs/api's tests hold that table to the router's own types.
 */
import { TRACKING_METHODS, type TrackingInput, type TrackingOutput, type TrackingProcedure } from '@aft/contracts';

export class TrackerError extends Error {
  constructor(
    message: string,
    /** HTTP status; 0 when the server could not be reached. */
    readonly status: number,
    readonly code: string,
    /** How long the server asked us to wait before sending again (its Retry-After), if it said. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'TrackerError';
  }
  /**
   * Worth retrying: the server could not be reached, is briefly down or overloaded, or asks us to slow down. Any
   * other 4xx is a refusal of this very request, and 501/505 say the server will never take it: sent again, they
   * would only fail again.
   */
  get retryable(): boolean {
    const s = this.status;
    return s === 0 || s === 408 || s === 429 || (s >= 500 && s !== 501 && s !== 505);
  }
}

export interface TransportOptions {
  url: string;
  apiKey: string;
  /** Give up on a request after retrying for this long (default 10 minutes). */
  retryForMs?: number;
  /**
   * A 500 is retried for at most this long (default 1 minute): it is what a database outage looks like, but also
   * what a server bug answers every time, and that must not hold a batch for the whole `retryForMs`.
   */
  retryServerErrorForMs?: number;
  fetch?: typeof fetch;
  /** Called before each retry, e.g. to log. */
  onRetry?: (err: TrackerError, attempt: number, delayMs: number) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Transport {
  private readonly base: string;
  private readonly doFetch: typeof fetch;
  constructor(private readonly opts: TransportOptions) {
    this.base = opts.url.replace(/\/+$/, '');
    this.doFetch = opts.fetch ?? fetch;
  }

  /** One attempt. */
  async once<P extends TrackingProcedure>(path: P, input: TrackingInput<P>): Promise<TrackingOutput<P>> {
    const headers: Record<string, string> = { 'x-api-key': this.opts.apiKey };
    let url = `${this.base}/api/trpc/${path}`;
    let body: string | undefined;
    const method = TRACKING_METHODS[path];
    // a caller outside the types (plain JS, a cast) naming a procedure the SDK does not know: a refusal, not a
    // network error to retry for ten minutes
    if (method === undefined) throw new TrackerError(`the SDK has no procedure "${path}"`, 400, 'UNKNOWN_PROCEDURE');
    if (method === 'GET') url += `?input=${encodeURIComponent(JSON.stringify(input))}`;
    else {
      body = JSON.stringify(input);
      headers['content-type'] = 'application/json';
    }
    let res: Response;
    try {
      res = await this.doFetch(url, { method, headers, body });
    } catch (e) {
      throw new TrackerError(`cannot reach ${this.base}: ${e instanceof Error ? e.message : String(e)}`, 0, 'NETWORK');
    }
    const text = await res.text();
    // the output's type is the table's, which libs/api/test/procedures.test.ts holds to what the router returns
    let json: { result?: { data: TrackingOutput<P> }; error?: { message?: string; data?: { code?: string } } } | null =
      null;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON: a proxy's error page, a crashed server
    }
    if (res.ok && json?.result) return json.result.data;
    const retryAfter = Number(res.headers.get('retry-after'));
    throw new TrackerError(
      json?.error?.message ?? `HTTP ${res.status} from ${path}: ${text.slice(0, 200)}`,
      res.status,
      json?.error?.data?.code ?? 'HTTP',
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
    );
  }

  /**
   * Retries what is retryable with exponential backoff and jitter (0.25 s doubling to 15 s, honouring Retry-After).
   * Safe for every write the SDK makes: the server stores each point, sample and artifact once, however often sent.
   */
  async call<P extends TrackingProcedure>(path: P, input: TrackingInput<P>): Promise<TrackingOutput<P>> {
    const started = Date.now();
    const retryFor = this.opts.retryForMs ?? 600_000;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(path, input);
      } catch (e) {
        const err = e instanceof TrackerError ? e : new TrackerError(String(e), 0, 'UNKNOWN');
        const budget = err.status === 500 ? Math.min(retryFor, this.opts.retryServerErrorForMs ?? 60_000) : retryFor;
        const deadline = started + budget;
        if (!err.retryable || Date.now() >= deadline) throw err;
        const delay = Math.min(err.retryAfterMs ?? 250 * 2 ** Math.min(attempt - 1, 6) * (0.5 + Math.random()), 15_000);
        this.opts.onRetry?.(err, attempt, delay);
        await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
      }
    }
  }
}
