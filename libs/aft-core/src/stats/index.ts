/** Statistics for comparing runs, free of TensorFlow: entered as `@aft/aft-core/stats` by the web and the CLI. */
export * from './arms';
export * from './binomial';
export * from './compare-runs';
export * from './distributions';
export * from './paired';
export * from './rows';
