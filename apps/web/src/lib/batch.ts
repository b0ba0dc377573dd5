import { LIMITS } from '@aft/contracts';

/** Ids in groups the API takes in one series or keys request (`LIMITS.runsPerSeriesQuery`, 200). */
export function inApiBatches<T>(xs: readonly T[], size: number = LIMITS.runsPerSeriesQuery): T[][] {
  return Array.from({ length: Math.ceil(xs.length / size) }, (_, i) => xs.slice(i * size, (i + 1) * size));
}
