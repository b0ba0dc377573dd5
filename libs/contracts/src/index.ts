export * from './wire';
export * from './limits';
export * from './tracking';
export * from './text';
export * from './progress';
export * from './procedures';
export * from './outcomes';
