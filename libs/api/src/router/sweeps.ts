/**
 * Launching training from the dashboard or a client: single runs (`runs.launch`, `runs.cancel`), the worker's
 * start of a run (`runs.start`), and sweeps (`sweeps.launch`, `sweeps.get`, `sweeps.list`, `sweeps.cancel`).
 * Rows are written first, in one transaction; if the queue then cannot take the jobs, the rows are deleted again,
 * so a failed launch leaves nothing behind.
 */
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { encodeDeep, id, pgText, runStartInput, tags } from '@aft/contracts';
import {
  cancelRuns,
  countStatuses,
  createQueuedRuns,
  deleteQueuedRuns,
  findForkSource,
  findLaunchParent,
  findRunStatus,
  findSweepWithRuns,
  listSweeps,
  startRun,
  sweepExists,
  sweepStatus,
  type Db,
  type NewRun,
} from '@aft/db';
import {
  alignJobConfig,
  planSweep,
  resourcesSpec,
  sweepSpec,
  vftJobConfig,
  wantsGpu,
  type Resources,
  type JobProducer,
  type SweepParentJob,
} from '@aft/queue';
import { launchProcedure, logProcedure, readProcedure } from '../trpc';
import { alertOnStatus } from '../alerts/fire';
import { configHash } from './runs';

const launchBase = {
  project: pgText.trim().min(1).max(100),
  name: pgText.min(1).max(200).optional(),
  tags: tags.default([]),
  /** `{ gpu: 1 }`: train on a GPU worker (docs/architecture.md, "GPU jobs"). */
  resources: resourcesSpec.optional(),
};

/**
 * A run's stored config with what it asked of its worker (`resources`, only when it asked for a GPU, like `forkOf`
 * outside the config hash): the run page shows it, and a fork or relaunch reads it back. The worker's schemas drop it.
 */
const withResources = (config: Record<string, unknown>, r: Resources | undefined): Record<string, unknown> =>
  wantsGpu(r) ? { ...config, resources: r } : config;
export const runLaunchInput = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('vft'), ...launchBase, config: vftJobConfig }).strict(),
  z
    .object({
      kind: z.literal('align'),
      ...launchBase,
      parentRunId: id,
      /** Fork a degraded run: start from its last good checkpoint (same parent and sample set). */
      forkOf: id.optional(),
      config: alignJobConfig,
    })
    .strict(),
]);

/** What a launch says when it asked for a GPU and no live worker has a GPU pool (docs/architecture.md, "GPU jobs"). */
export const NO_GPU_WORKER = 'no live worker takes GPU jobs (AFT_WORKER_GPUS); these runs wait until one starts';

/**
 * The launch still goes ahead (a GPU worker may be about to start), but says that its GPU runs would otherwise wait
 * silently, counting toward the team's active-run cap. A fleet that cannot be read warns of nothing: the launch
 * already reached Redis, and the Workers page tells the rest.
 */
async function gpuWarning(jobs: JobProducer, wanted: boolean): Promise<{ warning?: string }> {
  if (!wanted) return {};
  const fleet = await jobs.fleet().catch(() => null);
  if (!fleet) return {};
  const live = fleet.workers.some((w) => w.status !== 'gone' && w.pools.some((p) => p.kind === 'gpu'));
  return live ? {} : { warning: NO_GPU_WORKER };
}

async function enqueueOrUndo(db: Db['pool'], ids: string[], sweepId: string | null, enqueue: () => Promise<unknown>) {
  try {
    await enqueue();
  } catch (e) {
    await deleteQueuedRuns(db, ids, sweepId);
    throw new TRPCError({
      code: 'SERVICE_UNAVAILABLE',
      message: `the job queue is unreachable; nothing was launched (${(e as Error).message})`,
      cause: e,
    });
  }
}

export const launchRouter = {
  /** Queues one training run: a VFT run, or an alignment run from a finished VFT parent. */
  launch: launchProcedure.input(runLaunchInput).mutation(async ({ ctx, input }) => {
    const teamId = ctx.actor.teamId;
    let parentRunId: string | undefined;
    if (input.kind === 'align') {
      const parent = await findLaunchParent(ctx.db, teamId, input.parentRunId);
      if (!parent)
        throw new TRPCError({ code: 'NOT_FOUND', message: `parentRunId: run ${input.parentRunId} not found` });
      if (parent.method !== 'vft' || !vftJobConfig.safeParse(parent.config).success) {
        throw new TRPCError({
          code: 'BAD_REQUEST',
          message: `parentRunId: run ${parent.id} is not a VFT run launched by the platform`,
        });
      }
      if (parent.status !== 'succeeded') {
        throw new TRPCError({
          code: 'PRECONDITION_FAILED',
          message: `parentRunId: run ${parent.id} is ${parent.status}; launch alignment runs from a succeeded VFT run (or launch a sweep, which waits for its parent)`,
        });
      }
      parentRunId = parent.id;
      if (input.forkOf) {
        const src = await findForkSource(ctx.db, teamId, input.forkOf);
        if (!src) throw new TRPCError({ code: 'NOT_FOUND', message: `forkOf: run ${input.forkOf} not found` });
        if (src.parentRunId !== parent.id) {
          throw new TRPCError({
            code: 'BAD_REQUEST',
            message: `forkOf: run ${src.id} does not start from parent ${parent.id}`,
          });
        }
        if (!src.hasLastGood) {
          throw new TRPCError({
            code: 'PRECONDITION_FAILED',
            message: `forkOf: run ${src.id} has no last good checkpoint (it degraded at its first evaluation, or never); fork from its parent instead`,
          });
        }
      }
    }
    const c = input.config;
    const run: NewRun = {
      ref: 'run',
      parentRunId,
      name: input.name ?? (input.kind === 'vft' ? `vft-${c.seed}` : `${(c as { method: string }).method}-${c.seed}`),
      method: input.kind === 'vft' ? 'vft' : input.config.method,
      constraint: input.kind === 'vft' ? 'none' : input.config.constraint,
      config: withResources(
        {
          ...(c as Record<string, unknown>),
          ...(input.kind === 'align' && input.forkOf ? { forkOf: input.forkOf } : {}),
        },
        input.resources,
      ),
      configHash: configHash(c),
      seed: c.seed,
      tags: [...new Set(input.tags)],
    };
    const { ids, tokens } = await createQueuedRuns(
      ctx.db.pool,
      teamId,
      input.project,
      [run],
      undefined,
      ctx.maxActiveRuns,
    );
    const runId = ids.get('run')!;
    const runToken = tokens.get('run')!;
    await enqueueOrUndo(ctx.db.pool, [runId], null, () =>
      input.kind === 'vft'
        ? ctx.jobs.enqueueRun({ kind: 'vft', runId, runToken }, input.resources)
        : ctx.jobs.enqueueRun(
            { kind: 'align', runId, runToken, parentRunId: parentRunId!, initFromRunId: input.forkOf },
            input.resources,
          ),
    );
    return { runId, ...(await gpuWarning(ctx.jobs, wantsGpu(input.resources))) };
  }),

  /** Stops a run: a queued one never starts, a running one stops between steps. Finished runs are left alone. */
  cancel: launchProcedure.input(z.object({ id })).mutation(async ({ ctx, input }) => {
    const run = await findRunStatus(ctx.db, ctx.actor.teamId, input.id);
    if (!run) throw new TRPCError({ code: 'NOT_FOUND', message: `run ${input.id} not found` });
    const canceled = await cancelRuns(ctx.db.pool, ctx.actor.teamId, { runIds: [input.id] }, 'canceled by a user');
    await ctx.jobs.cancel(canceled);
    if (canceled[0]) await alertOnStatus(ctx, canceled[0], 'canceled');
    return { id: input.id, canceled: canceled.length > 0, status: canceled.length ? 'canceled' : run.status };
  }),

  /**
   * A worker takes up a run (or resumes it after a crash); `started: false` means skip it (canceled or finished). It
   * records where it trains the run as params (runStartInput).
   */
  start: logProcedure.input(runStartInput).mutation(async ({ ctx, input }) => {
    const res = await startRun(ctx.db.pool, input.id, ctx.actor.teamId, input.backend ?? null, input.params);
    if (!res) throw new TRPCError({ code: 'NOT_FOUND', message: `run ${input.id} not found` });
    return res;
  }),
};

async function sweepView(db: Db, teamId: string, sweepId: string) {
  const sweep = await findSweepWithRuns(db, teamId, sweepId);
  if (!sweep) throw new TRPCError({ code: 'NOT_FOUND', message: `sweep ${sweepId} not found` });
  const counts = countStatuses(sweep.runs);
  return {
    ...sweep,
    status: sweepStatus(counts),
    counts,
    runs: sweep.runs.map(({ events, summary, ...r }) => ({
      ...r,
      summary: encodeDeep(summary as Record<string, unknown>),
      degradedAt: events[0]?.step ?? null,
    })),
  };
}

export const sweepsRouter = {
  /** Expands the spec, writes the sweep and its runs (queued), and enqueues each VFT parent with its dependents. */
  launch: launchProcedure.input(sweepSpec).mutation(async ({ ctx, input }) => {
    const plan = planSweep(input);
    const lanes = Math.max(1, Math.floor(input.maxConcurrent / plan.parents.length));
    const rows: NewRun[] = [
      ...plan.parents.map((p) => ({
        ref: p.key,
        name: p.name,
        method: 'vft',
        constraint: 'none',
        config: withResources(p.config, plan.resources.vft),
        configHash: configHash(p.config),
        seed: p.config.seed,
        tags: ['sweep', 'parent'],
      })),
      ...plan.runs.map((r, i) => ({
        ref: `run-${i}`,
        parentRef: r.parentKey,
        name: r.name,
        method: r.config.method,
        constraint: r.config.constraint,
        config: withResources(r.config, plan.resources.align),
        configHash: configHash(r.config),
        seed: r.config.seed,
        tags: ['sweep'],
      })),
    ];
    const { sweepId, ids, tokens } = await createQueuedRuns(
      ctx.db.pool,
      ctx.actor.teamId,
      input.project,
      rows,
      { name: input.name, spec: input },
      ctx.maxActiveRuns,
    );
    const jobs: SweepParentJob[] = plan.parents.map((p) => ({
      vft: { kind: 'vft', runId: ids.get(p.key)!, runToken: tokens.get(p.key)!, sweepId: sweepId! },
      resources: plan.resources.vft,
      release: {
        sweepId: sweepId!,
        parentRunId: ids.get(p.key)!,
        lanes,
        resources: plan.resources.align,
        runs: plan.runs.flatMap((r, i) =>
          r.parentKey === p.key ? [{ runId: ids.get(`run-${i}`)!, runToken: tokens.get(`run-${i}`)! }] : [],
        ),
      },
    }));
    await enqueueOrUndo(ctx.db.pool, [...ids.values()], sweepId, () => ctx.jobs.enqueueSweep(jobs));
    const gpu = wantsGpu(plan.resources.vft) || (plan.runs.length > 0 && wantsGpu(plan.resources.align));
    return {
      sweepId: sweepId!,
      parents: plan.parents.length,
      runs: plan.runs.length,
      ...(await gpuWarning(ctx.jobs, gpu)),
    };
  }),

  /** The sweep with every run's status, config and summary: the per-run status grid. */
  get: readProcedure.input(z.object({ id })).query(({ ctx, input }) => sweepView(ctx.db, ctx.actor.teamId, input.id)),

  list: readProcedure
    .input(z.object({ projectId: id.optional(), limit: z.number().int().min(1).max(200).default(50) }))
    .query(async ({ ctx, input }) => {
      const sweeps = await listSweeps(ctx.db, ctx.actor.teamId, input);
      return sweeps.map(({ runs, ...s }) => {
        const counts = countStatuses(runs);
        return { ...s, runs: runs.length, counts, status: sweepStatus(counts) };
      });
    }),

  /** Cancels every run of the sweep that has not finished. */
  cancel: launchProcedure.input(z.object({ id })).mutation(async ({ ctx, input }) => {
    if (!(await sweepExists(ctx.db, ctx.actor.teamId, input.id)))
      throw new TRPCError({ code: 'NOT_FOUND', message: `sweep ${input.id} not found` });
    const canceled = await cancelRuns(ctx.db.pool, ctx.actor.teamId, { sweepId: input.id }, 'sweep canceled');
    await ctx.jobs.cancel(canceled);
    if (canceled[0]) await alertOnStatus(ctx, canceled[0], 'canceled'); // the sweep has now ended: one check does
    return { id: input.id, canceled: canceled.length };
  }),
};
