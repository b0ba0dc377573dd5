export { appRouter, type AppRouter } from './root';
export { createContextInner, apiKeyFromHeaders, createCallerFactory, type Context, type ContextInner } from './trpc';
export { runListInput, configHash } from './router/runs';
export type { WireSeries } from './router/metrics';
export { createApiHandler, type ApiHandlerOptions } from './http';
export { RedisRateLimiter, type RateLimiter } from './rate-limit';
