export * from './client';
export * from './metrics';
export * from './series';
export * from './runs-query';
export * from './run-writes';
export * from './notifier';
export * from './api-keys';
export * from './launch';
