import { z } from 'zod';
import { LIMITS } from './limits';
import { checkStorableJson, pgText } from './text';
import { wireNumber } from './wire';

/** Names shared by the tracking API and the SDK. Every schema is bounded: no input can be unbounded. */
export const id = pgText.min(1, 'must not be empty').max(64, 'must be at most 64 characters');

export const metricKey = z
  .string()
  .min(1, 'a metric key must not be empty')
  .max(200, 'a metric key is at most 200 characters')
  .regex(
    /^[\p{L}\p{N}_.\-/:@ ()[\]+=,]+$/u,
    'a metric key may hold letters, digits, spaces and _ . - / : @ ( ) [ ] + = ,',
  );

export const step = z
  .number({ error: 'step must be a number' })
  .int('step must be an integer')
  .min(0, 'step must be >= 0')
  .max(LIMITS.maxStep, `step must be <= ${LIMITS.maxStep}`);

export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'] as const;
export const runStatus = z.enum(RUN_STATUSES);
export type RunStatus = z.infer<typeof runStatus>;

export const tag = pgText
  .min(1)
  .max(64)
  .regex(/^[^\s,]+$/, 'a tag has no spaces or commas');
export const tags = z.array(tag).max(LIMITS.tags, `at most ${LIMITS.tags} tags`);

/** A JSON object (config, summary, metadata) Postgres can store; at most 64 KiB when serialised. */
export const jsonObject = z.record(z.string().max(200), z.unknown()).superRefine((o, ctx) => {
  // the depth check comes first: JSON.stringify of a hostile nesting would overflow the stack
  if (!checkStorableJson(o, ctx)) return;
  if (JSON.stringify(o).length > 65_536) {
    ctx.addIssue({ code: 'custom', message: 'must serialise to at most 64 KiB of JSON' });
  }
});

const time = z.number().int().min(0).max(LIMITS.maxTimeMs, `time is at most ${LIMITS.maxTimeMs} (ms since the epoch)`);

export const metricPointInput = z.object({
  key: metricKey,
  step,
  value: wireNumber,
  /** Milliseconds since the epoch; the server's clock when absent. */
  time: time.optional(),
});
export type MetricPointInput = z.infer<typeof metricPointInput>;

const intIn = (lo: number, hi: number) => (v: unknown) =>
  typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;

/**
 * `z.array(item)` for a 10,000-entry column: one plain loop checks it (`ok` accepts exactly what `item` accepts),
 * and zod parses it element by element only when that loop finds a bad entry, to word the error as always (its
 * index, the item's message). zod's own per-element parse was about 12% of the server's work per ingested point.
 */
function column<T extends z.ZodType>(item: T, ok: (v: unknown) => boolean, max = Infinity, tooMany = '') {
  const full = max === Infinity ? z.array(item) : z.array(item).max(max, tooMany);
  return z.unknown().transform((v, ctx) => {
    if (Array.isArray(v) && v.length <= max && v.every(ok)) return v as z.output<T>[];
    const r = full.safeParse(v);
    if (r.success) return r.data;
    for (const issue of r.error.issues) ctx.addIssue({ ...issue, code: 'custom', message: issue.message });
    return z.NEVER;
  }) as unknown as z.ZodType<z.output<T>[], z.input<T>[]>;
}

/**
 * The compact form of a batch, which the SDK sends: each key name once, then one column per field.
 * About a third of the bytes of `points`, and far cheaper to parse and validate.
 */
export const metricColumns = z
  .object({
    keys: z.array(metricKey).min(1).max(LIMITS.keysPerBatch, `at most ${LIMITS.keysPerBatch} distinct keys per batch`),
    /** Index into `keys` for each point. */
    key: column(
      z.number().int().min(0),
      intIn(0, Number.MAX_SAFE_INTEGER),
      LIMITS.pointsPerBatch,
      `a batch holds at most ${LIMITS.pointsPerBatch} points; split it`,
    ),
    step: column(step, intIn(0, LIMITS.maxStep)),
    value: column(
      wireNumber,
      (v) => (typeof v === 'number' && Number.isFinite(v)) || v === 'NaN' || v === 'Infinity' || v === '-Infinity',
    ),
    /** Milliseconds since the epoch for each point; the server's clock when absent. */
    time: column(time, intIn(0, LIMITS.maxTimeMs)).optional(),
  })
  .superRefine((c, ctx) => {
    const n = c.key.length;
    if (n === 0) ctx.addIssue({ code: 'custom', message: 'a batch holds at least one point', path: ['key'] });
    for (const f of ['step', 'value', 'time'] as const) {
      const len = c[f]?.length;
      if (len !== undefined && len !== n) {
        ctx.addIssue({
          code: 'custom',
          message: `${f} has ${len} entries but key has ${n}; columns must be the same length`,
          path: [f],
        });
      }
    }
    const bad = c.key.findIndex((k) => k >= c.keys.length);
    if (bad >= 0) {
      ctx.addIssue({
        code: 'custom',
        message: `key index ${c.key[bad]} is not an index into keys (${c.keys.length} keys)`,
        path: ['key', bad],
      });
    }
  });
export type MetricColumns = z.infer<typeof metricColumns>;

export const sampleInput = z.object({
  step,
  split: pgText.min(1).max(32).default('train'),
  questionId: pgText.min(1).max(200),
  sampleIdx: z.number().int().min(0).max(1_000_000).default(0),
  prompt: pgText.max(LIMITS.textField),
  completion: pgText.max(LIMITS.textField),
  extractedAnswer: pgText.max(1000).nullable().optional(),
  gold: pgText.max(1000).nullable().optional(),
  correct: z.boolean().nullable().optional(),
  score: wireNumber.nullable().optional(),
  rank: z.number().int().min(0).max(1_000_000).nullable().optional(),
});
export type SampleInput = z.input<typeof sampleInput>;

export const samplesLogInput = z.object({
  runId: id,
  rows: z
    .array(sampleInput)
    .min(1, 'a batch holds at least one sample')
    .max(LIMITS.samplesPerBatch, `a batch holds at most ${LIMITS.samplesPerBatch} samples; split it`),
});

export const ARTIFACT_KINDS = ['checkpoint', 'sample-set', 'dataset', 'report', 'other'] as const;
export const artifactInput = z.object({
  runId: id,
  kind: z.enum(ARTIFACT_KINDS),
  name: pgText.min(1).max(200),
  uri: pgText.min(1).max(2000),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'sha256 is 64 lowercase hex digits')
    .optional(),
  bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  step: step.optional(),
  metadata: jsonObject.optional(),
});
export type ArtifactInput = z.input<typeof artifactInput>;

export const eventInput = z.object({
  runId: id,
  kind: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[a-z0-9][a-z0-9-]*$/, 'an event kind is lowercase words joined by -'),
  step: step.optional(),
  details: jsonObject.optional(),
});

export const runCreateInput = z.object({
  project: pgText.min(1).max(100),
  name: pgText.min(1).max(200).optional(),
  method: pgText.min(1).max(32).default('external'),
  constraint: pgText.min(1).max(32).default('none'),
  config: jsonObject.default({}),
  tags: tags.default([]),
  notes: pgText.max(10_000).default(''),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .optional(),
  datasetHash: pgText.max(128).optional(),
  backend: pgText.max(32).optional(),
  parentRunId: id.optional(),
  sweepId: id.optional(),
  /** Resume an existing run of this team instead of creating one (idempotent restarts). */
  resumeId: id.optional(),
});
export type RunCreateInput = z.input<typeof runCreateInput>;

/**
 * Where a worker trains a run, recorded as the run's params when it takes the run up (docs/architecture.md, "GPU
 * jobs"): `backend` and `backend.…` (aft-core's backendRecord: provider, kernels, adapter and its limits) and
 * `worker.…` (its host). Only these keys, so what the launch wrote into the config is never overwritten; each start
 * replaces the previous start's (libs/db launch.ts startRun).
 */
export const runStartParams = z
  .record(
    z
      .string()
      .max(200, 'is at most 200 characters')
      .regex(/^(backend(\.[\w.-]+)?|worker\.[\w.-]+)$/, 'is `backend`, `backend.<name>` or `worker.<name>`'),
    pgText.max(1000, 'a param is at most 1000 characters'),
  )
  .refine((o) => Object.keys(o).length <= 64, 'at most 64 params')
  // each start replaces the last's params, but 64 of 1000 characters would still pass the config's 64 KiB
  .refine((o) => JSON.stringify(o).length <= 16_384, 'must serialise to at most 16 KiB of JSON');

export const runStartInput = z.object({
  id,
  /** The backend the trainer chose, also kept in the run's `backend` column. */
  backend: pgText.min(1).max(64).optional(),
  params: runStartParams.optional(),
});

export const runSetStatusInput = z.object({
  id,
  status: runStatus,
  error: pgText.max(10_000).optional(),
});

export const runSetSummaryInput = z.object({
  id,
  /** Merged into the stored summary; non-finite numbers travel as "NaN"/"Infinity"/"-Infinity". */
  summary: z.record(pgText.max(200), z.union([wireNumber, pgText.max(1000), z.boolean(), z.null()])),
});
