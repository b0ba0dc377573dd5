import { createHash, randomBytes } from 'node:crypto';
import { tracked, TRPCError } from '@trpc/server';
import { z } from 'zod';
import {
  encodeNumber,
  id,
  LIMITS,
  pgText,
  runCreateInput,
  runSetStatusInput,
  runSetSummaryInput,
  runStatus,
  tags,
} from '@aft/contracts';
import {
  createClientRun,
  deleteRun,
  findRunDetail,
  findRunLiveState,
  listRuns,
  mergeRunSummary,
  setRunStatus,
  sweepExists,
  updateRunMeta,
  type Db,
} from '@aft/db';
import { removeRunArtifactFiles } from '../artifact-files';
import { audit } from '../audit';
import { alertOnStatus } from '../alerts/fire';
import { streamGuard } from '../streams';
import { logProcedure, runAdminProcedure, readProcedure, writeProcedure } from '../trpc';

const scalar = z.union([pgText.max(500), z.number(), z.boolean(), z.null()]);
const valueFilter = z.object({
  path: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[\w\-/@:]+(\.[\w\-/@:]+)*$/, 'a path is dotted words, e.g. `optim.lr` or `test/task_accuracy`'),
  op: z.enum(['eq', 'ne', 'gt', 'gte', 'lt', 'lte']).default('eq'),
  value: scalar,
});

export const runListInput = z.object({
  projectId: id.optional(),
  sweepId: id.optional(),
  status: z.array(runStatus).max(5).optional(),
  method: z.array(pgText.min(1).max(32)).max(20).optional(),
  constraint: z.array(pgText.min(1).max(32)).max(20).optional(),
  tags: tags.optional(),
  search: pgText.max(200).optional(),
  config: z.array(valueFilter).max(20).optional(),
  summary: z.array(valueFilter).max(20).optional(),
  sortBy: z
    .string()
    .max(210)
    .regex(
      /^(createdAt|name|status|method|summary\.[\w\-./@:]+)$/,
      'sortBy is createdAt, name, status, method or summary.<metric>',
    )
    .default('createdAt'),
  sortDir: z.enum(['asc', 'desc']).default('desc'),
  cursor: pgText.max(1000).optional(),
  limit: z.number().int().min(1).max(LIMITS.pageSize).default(50),
});

/** Stable hash of a config: the same settings in any key order hash the same. */
export function configHash(config: unknown): string {
  const canon = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(canon)
      : v && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v as object)
              .sort()
              .map((k) => [k, canon((v as Record<string, unknown>)[k])]),
          )
        : v;
  return createHash('sha256')
    .update(JSON.stringify(canon(config)))
    .digest('hex')
    .slice(0, 16);
}

async function getRun(db: Db, teamId: string, runId: string) {
  const run = await findRunDetail(db, teamId, runId);
  if (!run) throw new TRPCError({ code: 'NOT_FOUND', message: `run ${runId} not found` });
  return run;
}

/** What the live subscription sends: everything on the run page that can change while it trains. */
export async function runState(db: Db, teamId: string, runId: string) {
  const run = await findRunLiveState(db, teamId, runId);
  if (!run) return null;
  return {
    ...run,
    metrics: run.metrics.map((m) => ({ ...m, lastValue: encodeNumber(m.lastValue) })),
  };
}

export const runsRouter = {
  /** Creates a run in the named project (created if new), or resumes `resumeId`. */
  create: writeProcedure
    .input(runCreateInput.extend({ status: z.enum(['queued', 'running']).default('running') }))
    .mutation(async ({ ctx, input }) => {
      const teamId = ctx.actor.teamId;
      if (input.resumeId) {
        const existing = await getRun(ctx.db, teamId, input.resumeId);
        await setRunStatus(ctx.db.pool, existing.id, teamId, 'running');
        return getRun(ctx.db, teamId, existing.id);
      }
      if (input.parentRunId) await getRun(ctx.db, teamId, input.parentRunId);
      if (input.sweepId && !(await sweepExists(ctx.db, teamId, input.sweepId)))
        throw new TRPCError({ code: 'NOT_FOUND', message: `sweep ${input.sweepId} not found` });
      const createdId = await createClientRun(ctx.db, teamId, {
        project: input.project,
        name: input.name ?? `${input.method}-${randomBytes(3).toString('hex')}`,
        method: input.method,
        constraint: input.constraint,
        config: input.config,
        configHash: configHash(input.config),
        tags: [...new Set(input.tags)],
        notes: input.notes,
        seed: input.seed ?? null,
        datasetHash: input.datasetHash ?? null,
        backend: input.backend ?? null,
        parentRunId: input.parentRunId ?? null,
        sweepId: input.sweepId ?? null,
        status: input.status,
      });
      return getRun(ctx.db, teamId, createdId);
    }),

  get: readProcedure.input(z.object({ id })).query(async ({ ctx, input }) => {
    const run = await getRun(ctx.db, ctx.actor.teamId, input.id);
    // a run token reads the runs it trains from, not their lineage: a parent's children are a whole sweep
    return ctx.actor.run ? { ...run, parent: null, children: [] } : run;
  }),

  list: readProcedure.input(runListInput).query(async ({ ctx, input }) => {
    return listRuns(ctx.db.pool, { ...input, teamId: ctx.actor.teamId });
  }),

  /** Tags, notes and name: what a person annotates. */
  update: writeProcedure
    .input(
      z
        .object({
          id,
          tags: tags.optional(),
          notes: pgText.max(10_000).optional(),
          name: pgText.min(1).max(200).optional(),
        })
        .refine((v) => v.tags !== undefined || v.notes !== undefined || v.name !== undefined, {
          message: 'give at least one of tags, notes, name',
        }),
    )
    .mutation(async ({ ctx, input }) => {
      await updateRunMeta(ctx.db.pool, input.id, ctx.actor.teamId, {
        tags: input.tags ? [...new Set(input.tags)] : undefined,
        notes: input.notes,
        name: input.name,
      });
      return getRun(ctx.db, ctx.actor.teamId, input.id);
    }),

  /** Deletes a run with everything it logged; recorded in the audit log. Members and `launch` keys. */
  delete: runAdminProcedure.input(z.object({ id })).mutation(async ({ ctx, input }) => {
    const { actor } = ctx;
    await deleteRun(ctx.db.pool, input.id, actor.teamId, (c, run) =>
      audit(
        ctx.db,
        {
          teamId: actor.teamId,
          userId: actor.userId,
          keyId: actor.keyId,
          action: 'run.delete',
          target: input.id,
          details: { name: run.name },
          ip: ctx.ip,
        },
        c,
      ),
    );
    // after the commit: the rows are gone for good, the files are now only bytes to free (failures are logged)
    await removeRunArtifactFiles(ctx.artifactDir, input.id);
    return { id: input.id, deleted: true };
  }),

  setStatus: writeProcedure.input(runSetStatusInput).mutation(async ({ ctx, input }) => {
    const seq = await setRunStatus(ctx.db.pool, input.id, ctx.actor.teamId, input.status, input.error);
    await alertOnStatus(ctx, input.id, input.status, input.error);
    return { id: input.id, status: input.status, writeSeq: seq };
  }),

  setSummary: logProcedure.input(runSetSummaryInput).mutation(async ({ ctx, input }) => {
    const seq = await mergeRunSummary(ctx.db.pool, input.id, ctx.actor.teamId, input.summary);
    return { id: input.id, writeSeq: seq };
  }),

  /**
   * Live updates of one run over SSE. Back-fills from Postgres: the first message is the run's current state
   * (unless the client already saw it: `lastEventId`), then one message per write, woken by Postgres NOTIFY
   * (with a slow poll as a fallback). Each message is tracked by the run's write sequence, so a reconnecting
   * client resumes where it left off and never misses the latest state. The caller's access is re-checked before
   * each message and every few seconds (streams.ts): a revoked key or removed member ends the stream; so does its
   * maximum lifetime, after which the client reconnects.
   */
  onUpdate: readProcedure
    .input(z.object({ runId: id, lastEventId: z.string().max(32).nullish() }))
    .subscription(async function* ({ ctx, input, signal }) {
      const teamId = ctx.actor.teamId;
      const guard = streamGuard(ctx, 'read');
      let seen = input.lastEventId ? Number(input.lastEventId) : -1;
      if (!Number.isFinite(seen)) seen = -1;
      const first = await runState(ctx.db, teamId, input.runId);
      if (!first) throw new TRPCError({ code: 'NOT_FOUND', message: `run ${input.runId} not found` });
      let state: typeof first | null = first;
      while (!signal?.aborted && state) {
        if (state.writeSeq > seen) {
          // checked after the read, before the send: nothing read after a revocation goes out
          await guard.check(true);
          seen = state.writeSeq;
          yield tracked(String(seen), state);
        }
        await ctx.notifier.wait(input.runId, guard.waitMs(5_000), signal);
        if (signal?.aborted) break;
        await guard.check(false);
        state = await runState(ctx.db, teamId, input.runId);
      }
    }),
};
