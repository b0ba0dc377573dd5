/**
 * Queue contracts shared by the web app (producer) and the worker (consumer): queue names, job payload schemas
 * (both sides parse), sweep specs and their expansion, producers, and Redis connection settings.
 * `@aft/queue/spec` is the same schemas without BullMQ, for the browser.
 */
export * from './spec';
export * from './producer';
export * from './alerts';
export * from './webhook';
export * from './fleet';
