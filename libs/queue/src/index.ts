/**
 * Queue contracts shared by the web app (producer) and the worker (consumer): queue names, job payload and
 * progress schemas (both sides parse), sweep specs and their expansion, producers, and Redis connection settings.
 */
export * from './jobs';
export * from './sweep';
export * from './producer';
