/** Request limits shared by the API (which enforces them) and the SDK (which sizes its batches to fit). */
export const LIMITS = {
  pointsPerBatch: 10_000,
  samplesPerBatch: 1_000,
  runsPerSeriesQuery: 200,
  keysPerSeriesQuery: 50,
  seriesPerQuery: 1_000,
  maxBuckets: 5_000,
  pageSize: 200,
  tags: 50,
  maxStep: 2_147_483_647,
  textField: 100_000,
} as const;
