export * from './common';
export * from './registry';
export { aftGroupLoss } from './aft';
export { dpoGroupLoss } from './dpo';
export { rrhfGroupLoss } from './rrhf';
export { proGroupLoss } from './pro';
