import { cpus } from 'node:os';
import { z } from 'zod';

/** The worker's settings, validated once at start. The only place this app reads process.env. */
const schema = z.object({
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  AFT_URL: z.string().url().default('http://127.0.0.1:3000'),
  AFT_API_KEY: z.string().optional(),
  AFT_QUEUE: z.string().min(1).default('aft-runs'),
  AFT_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(cpus().length),
  AFT_ARTIFACT_DIR: z.string().default('artifacts'),
});

export function loadEnv() {
  const parsed = schema.safeParse(process.env);
  if (!parsed.success) throw new Error(`invalid environment: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
