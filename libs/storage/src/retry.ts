/**
 * Bounded retries with exponential backoff and jitter for what a network or an overloaded server makes fail for a
 * moment: connections reset or refused (a server restarting), timeouts, 5xx and throttling. Anything else — a
 * missing bucket, a denied key, a checksum mismatch — fails at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** The first wait; each next one doubles, up to maxMs, and is drawn between half and all of that. */
  baseMs: number;
  maxMs: number;
  /**
   * The most wall-clock time all tries and waits together may take: no try starts, and no wait runs, past it
   * (the S3 backend also cuts the try in flight there). Unset: only `attempts` bounds it.
   */
  totalMs?: number;
}

/** About 8 s of waiting in the worst case: a restarting MinIO is back well within it. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseMs: 250, maxMs: 4_000, totalMs: 60_000 };

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);
const TRANSIENT_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'InternalError',
  'ServiceUnavailable',
]);

/** Whether trying again may succeed. */
export function isTransient(e: unknown): boolean {
  if (!e || typeof e !== 'object') return false;
  const err = e as {
    code?: string;
    name?: string;
    message?: string;
    cause?: unknown;
    $metadata?: { httpStatusCode?: number };
    $retryable?: unknown;
  };
  if (err.code && NETWORK_CODES.has(err.code)) return true;
  if (err.name && (NETWORK_CODES.has(err.name) || TRANSIENT_NAMES.has(err.name))) return true;
  const status = err.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  if (err.$retryable) return true;
  if (typeof err.message === 'string' && /socket hang up|other side closed/i.test(err.message)) return true;
  return err.cause !== undefined && err.cause !== e && isTransient(err.cause);
}

/**
 * Runs `f` until it succeeds, fails with an error that is not transient, or has used its attempts or its time
 * (`policy.totalMs`); the last error is thrown. `f` is told the time it has left (Infinity without a bound).
 * `onRetry` hears of each failure that will be retried (for logs and tests).
 */
export async function withRetry<T>(
  f: (attempt: number, msLeft: number) => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
  onRetry?: (e: unknown, attempt: number, waitMs: number) => void,
): Promise<T> {
  const until = policy.totalMs ? Date.now() + policy.totalMs : Infinity;
  for (let attempt = 1; ; attempt++) {
    try {
      return await f(attempt, until - Date.now());
    } catch (e) {
      if (attempt >= policy.attempts || !isTransient(e)) throw e;
      const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
      const wait = Math.round(cap / 2 + (Math.random() * cap) / 2);
      if (Date.now() + wait >= until) throw e;
      onRetry?.(e, attempt, wait);
      await sleep(wait);
    }
  }
}

/** A request cut at its time limit (a server that accepted it and never answered): transient, as TimeoutError. */
export class StoreTimeoutError extends Error {
  override readonly name = 'TimeoutError';
  constructor(what: string, ms: number, cause?: unknown) {
    super(`${what}: no answer within ${ms} ms`, { cause });
  }
}
