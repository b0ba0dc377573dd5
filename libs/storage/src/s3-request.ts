/**
 * How the S3 backend sends a request: tried as the store's retry policy says, and each try cut at a deadline of its
 * own, so that a server that accepts and never answers costs a caller a bounded time, not the operating system's TCP
 * timeouts.
 */
import { StoreTimeoutError, withRetry, type RetryPolicy } from './retry';

export const MiB = 1024 * 1024;

/** Bytes this store has moved, for benches and logs. */
export interface Traffic {
  up: number;
  down: number;
}

/**
 * Sends one request (`f`, given the signal that aborts its try); `bytes` is the body it sends (more time for a
 * larger one), `once` tries it a single time (a best-effort cleanup).
 */
export type Send = <T>(
  what: string,
  f: (abortSignal: AbortSignal) => Promise<T>,
  bytes?: number,
  once?: boolean,
) => Promise<T>;

/**
 * One request, tried as the policy says: each try is cut at its own limit (the signal aborts it) and all of them
 * at the policy's total. The timer stops when the answer's headers are in, so a body still streaming is not cut.
 * A try's limit is `requestTimeoutMs` plus 1 s per MiB of the body; the policy's total gets twice that allowance.
 */
export function sender(
  policy: RetryPolicy,
  requestTimeoutMs: number,
  onRetry?: (what: string, e: unknown, attempt: number) => void,
): Send {
  return <T>(what: string, f: (abortSignal: AbortSignal) => Promise<T>, bytes = 0, once = false): Promise<T> => {
    const allowance = Math.round((bytes / MiB) * 1000);
    const tries: RetryPolicy = {
      ...policy,
      ...(once && { attempts: 1 }),
      ...(policy.totalMs && { totalMs: policy.totalMs + 2 * allowance }),
    };
    return withRetry(
      async (_attempt, msLeft) => {
        const ms = Math.min(requestTimeoutMs + allowance, msLeft);
        if (ms <= 0) throw new StoreTimeoutError(what, tries.totalMs ?? 0);
        const ac = new AbortController();
        const timer = setTimeout(() => ac.abort(), ms);
        try {
          return await f(ac.signal);
        } catch (e) {
          throw ac.signal.aborted ? new StoreTimeoutError(what, ms, e) : e;
        } finally {
          clearTimeout(timer);
        }
      },
      tries,
      (e, attempt) => onRetry?.(what, e, attempt),
    );
  };
}
