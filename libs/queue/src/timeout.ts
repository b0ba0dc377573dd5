/** How long a producer waits for Redis before it reports the queue unreachable. */
export const ENQUEUE_TIMEOUT_MS = 5_000;

/**
 * `p`, or a rejection after ENQUEUE_TIMEOUT_MS: a producer's Redis that is connected but does not answer would
 * otherwise hold the API request that enqueues (ioredis only fails fast when the connection is down).
 */
export function redisTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Redis did not answer within ${ENQUEUE_TIMEOUT_MS / 1000} s (${what})`)),
        ENQUEUE_TIMEOUT_MS,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}
