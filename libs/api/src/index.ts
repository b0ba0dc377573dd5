export { appRouter, type AppRouter, type RouterInputs, type RouterOutputs } from './root';
export {
  createContextInner,
  apiKeyFromHeaders,
  createCallerFactory,
  ROLE_PERMISSIONS,
  type Context,
  type ContextInner,
  type Role,
} from './trpc';
export { createAuth, sessionUser, SIGN_IN_LIMITS, type Auth } from './auth';
export { clientIp, clientIpStamping, parseTrustedProxies, stampClientIp, CLIENT_IP_HEADER } from './client-ip';
export { audit } from './audit';
export { runListInput, configHash } from './router/runs';
export type { WireSeries } from './router/metrics';
export { createApiHandler, requestContext, cookieValue, TEAM_COOKIE, type ApiHandlerOptions } from './http';
export { RedisRateLimiter, type RateLimiter } from './rate-limit';
export { createExportHandler } from './export';
export { alertDeliveryApi, createAlertDeliveryHandler } from './alerts/delivery';
export { requeueAlerts, startAlertRequeue } from './alerts/requeue';
export { createMlflowHandler, MLFLOW_LIMITS, type MlflowOptions } from './mlflow/handler';
export { bodyLimited, BodyTooLargeError, readBody, withBodyLimit } from './body';
