/**
 * Ingestion rate per API key, shared by every web server through Redis: fixed one-second windows, charged by what a
 * request writes (points or samples). Over the limit a request gets 429 with `Retry-After`, which the SDK honours.
 */
import type { Redis } from 'ioredis';

export interface RateLimiter {
  /** Charges `cost` units to the key in the current second; says when to retry if that goes over the limit. */
  take(keyId: string, cost: number): Promise<{ ok: true } | { ok: false; retryAfterS: number; limit: number }>;
}

export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: Redis,
    /** Units (points, samples) per key per second. */
    readonly perSecond: number,
    private readonly prefix = 'aft:rate',
    /** The window the rate is counted over (perSecond × window allowed in it). */
    private readonly windowMs = 1000,
  ) {}

  async take(keyId: string, cost: number) {
    const now = Date.now();
    const window = Math.floor(now / this.windowMs);
    const k = `${this.prefix}:${keyId}:${window}`;
    const allowed = (this.perSecond * this.windowMs) / 1000;
    const [[, used]] = (await this.redis
      .multi()
      .incrby(k, cost)
      .pexpire(k, 2 * this.windowMs)
      .exec()) as [[Error | null, number]];
    // a first request bigger than the window's allowance still goes through (one batch is never refused for good)
    if (used > allowed && used - cost > 0) {
      return {
        ok: false as const,
        retryAfterS: Math.max(1, Math.ceil(((window + 1) * this.windowMs - now) / 1000)),
        limit: this.perSecond,
      };
    }
    return { ok: true as const };
  }
}
