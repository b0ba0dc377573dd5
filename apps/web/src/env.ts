import { z } from 'zod';

/** The web server's settings, validated once at start. The only place this app reads process.env. */
const schema = z.object({
  DATABASE_URL: z.string().url().default('postgresql://postgres@127.0.0.1:5432/aft'),
  /** Team the dashboard acts for until sign-in lands (seeded by `npm run db:seed`); empty turns it off. */
  AFT_LOCAL_TEAM: z.string().max(64).default('local'),
  AFT_DB_POOL: z.coerce.number().int().min(1).max(100).default(16),
  /** Where launches are queued; empty turns launching off (runs can still be logged). */
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  AFT_QUEUE: z.string().min(1).default('aft-runs'),
  /** Points or samples an API key may write per second (over it: 429 with Retry-After); 0 turns the limit off. */
  AFT_RATE_PER_S: z.coerce.number().int().min(0).default(1_000_000),
});

let cached: z.infer<typeof schema> | null = null;
export function env() {
  if (!cached) {
    const parsed = schema.safeParse(process.env);
    if (!parsed.success) throw new Error(`invalid environment: ${z.prettifyError(parsed.error)}`);
    cached = parsed.data;
  }
  return cached;
}
