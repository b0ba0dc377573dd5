/** Request limits shared by the API (which enforces them) and the SDK (which sizes its batches to fit). */
export const LIMITS = {
  /**
   * Latest wall time of a metric point, ms since the epoch (year 10889): the metric store's chunks hold times up to
   * 2^48 (libs/db metric-codec.ts).
   */
  maxTimeMs: 2 ** 48 - 1,
  pointsPerBatch: 10_000,
  /** Distinct metric keys one batch may name. */
  keysPerBatch: 1_000,
  samplesPerBatch: 1_000,
  runsPerSeriesQuery: 200,
  keysPerSeriesQuery: 50,
  seriesPerQuery: 1_000,
  maxBuckets: 5_000,
  pageSize: 200,
  tags: 50,
  maxStep: 2_147_483_647,
  textField: 100_000,
  /** Calls in one batched tRPC request. */
  batchCalls: 20,
  /** Points (raw points or buckets) one request may read: each series call is charged runs × keys × buckets. */
  pointsPerRequest: 2_000_000,
  /** Distinct metric keys one run may log. */
  metricKeysPerRun: 1_000,
} as const;
