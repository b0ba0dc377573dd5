import { z } from 'zod';
import { METRIC_FOLD_VALUES } from '@aft/db';
import { storageEnv } from '@aft/storage';

/** The web server's settings, validated once at start. The only place this app reads process.env. */
const schema = z.object({
  DATABASE_URL: z.string().url().default('postgresql://postgres@127.0.0.1:5432/aft'),
  /** Signs session cookies: 32 or more random characters (`openssl rand -base64 32`). `npm run demo` makes one. */
  AFT_AUTH_SECRET: z.string().min(32, 'AFT_AUTH_SECRET must be at least 32 characters (openssl rand -base64 32)'),
  /** The dashboard's public URL (https://aft.example.org); unset, any localhost or 127.0.0.1 port over http. */
  AFT_PUBLIC_URL: z.preprocess((v) => (v === '' ? undefined : v), z.string().url().optional()),
  AFT_DB_POOL: z.coerce.number().int().min(1).max(100).default(16),
  /** Longest one database statement of a request may run, in ms (then: 503); 0 turns the limit off. */
  AFT_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(0).default(15_000),
  /** Where launches are queued; empty turns launching off (runs can still be logged). */
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  AFT_QUEUE: z.string().min(1).default('aft-runs'),
  /** Points or samples an API key may write per second (over it: 429 with Retry-After); 0 turns the limit off. */
  /** Where files uploaded through the MLflow API (small artifacts) are kept. */
  AFT_MLFLOW_ARTIFACT_DIR: z.string().min(1).default('.aft/mlflow-artifacts'),
  /** The shared artifact store (AFT_ARTIFACT_URL, with AWS_*): when set, MLflow uploads are kept there instead. */
  ...storageEnv,
  /** Bytes of uploaded artifacts one team may keep (default 10 GiB); an upload past it is refused with 413. */
  AFT_TEAM_STORAGE_BYTES: z.coerce.number().int().min(0).default(10_737_418_240),
  AFT_RATE_PER_S: z.coerce.number().int().min(0).default(1_000_000),
  /** Queued plus running runs one team may have at once; a launch past it is refused with 429 naming the limit. */
  AFT_TEAM_MAX_ACTIVE_RUNS: z.coerce.number().int().min(1).max(1_000_000).default(2_000),
  /** Longest a live stream (a run page's updates) stays open, in seconds; the browser then reconnects on its own. */
  AFT_STREAM_MAX_S: z.coerce.number().int().min(10).max(86_400).default(900),
  /** When metric points are folded into chunks (libs/db metric-folder.ts): background (default), write, or off. */
  AFT_METRIC_FOLD: z.enum(METRIC_FOLD_VALUES).default(''),
  /** Seconds between sweeps that fold what the background folder missed (one process of the cluster at a time). */
  AFT_METRIC_SWEEP_S: z.coerce.number().int().min(5).max(86_400).default(300),
  /** Rows the metric store deletes or rewrites in a table before the process vacuums it (libs/db metric-vacuum.ts). */
  AFT_METRIC_TAIL_VACUUM_ROWS: z.coerce.number().int().min(1).max(1e9).optional(),
  AFT_METRIC_CHUNK_VACUUM_ROWS: z.coerce.number().int().min(1).max(1e9).optional(),
  AFT_METRIC_ROLLUP_VACUUM_ROWS: z.coerce.number().int().min(1).max(1e9).optional(),
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
