/**
 * MLflow's runs endpoints, and a run in MLflow's shape. A run's `method` comes from the tag `aft.method` (else
 * `external`) and its `constraint` from `aft.constraint`, so MLflow runs group with ours; its params are its config
 * entries and its tags its key-value tags.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import {
  createMlflowRun,
  deleteRun,
  findMlflowRun,
  lastMetricValues,
  updateMlflowRun,
  type ColumnsFromTags,
  type MlflowRunRow,
} from '@aft/db';
import { alertOnStatus, type AlertContext } from '../alerts/fire';
import { removeRunArtifactFiles } from '../artifact-files';
import { audit } from '../audit';
import { configHash } from '../router/runs';
import { experimentOf } from './experiments';
import { epochMs, parse, runId, runIdOf, runNotFound, tag, type Ctx, type Endpoint } from './wire';

const STATUS: Record<string, string> = {
  running: 'RUNNING',
  queued: 'SCHEDULED',
  succeeded: 'FINISHED',
  failed: 'FAILED',
  canceled: 'KILLED',
};
const FROM_STATUS: Record<string, string> = Object.fromEntries(Object.entries(STATUS).map(([ours, m]) => [m, ours]));

/** What the alert hooks need: MLflow writes fire the same rules as ours (docs/architecture.md, "Alerts"). */
export const alerting = (ctx: Ctx): AlertContext => ({ db: ctx.db, jobs: ctx.opts.jobs ?? null, actor: ctx.actor });

/** A run of the team, or MLflow's RESOURCE_DOES_NOT_EXIST. */
export async function runOf(ctx: Ctx, id: string): Promise<MlflowRunRow> {
  const run = await findMlflowRun(ctx.db.pool, ctx.actor.teamId, id);
  if (!run) throw runNotFound(id);
  return run;
}

/** Config entries as MLflow params: nested objects flatten to dotted keys; values are strings. */
export function configParams(config: Record<string, unknown>, prefix = ''): { key: string; value: string }[] {
  return Object.entries(config ?? {}).flatMap(([k, v]) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? configParams(v as Record<string, unknown>, `${prefix}${k}.`)
      : [{ key: `${prefix}${k}`, value: typeof v === 'string' ? v : JSON.stringify(v) }],
  );
}

/** Tags that also set run columns: the name, and AFT's method and constraint (so MLflow runs group with ours). */
export function columnsFromTags(tags: Record<string, string>): ColumnsFromTags {
  const out: ColumnsFromTags = {};
  if (tags['mlflow.runName']) out.name = tags['mlflow.runName'].slice(0, 200);
  const m = tags['aft.method']?.toLowerCase();
  if (m && /^[a-z0-9_-]{1,32}$/.test(m)) out.method = m;
  const c = tags['aft.constraint']?.toLowerCase();
  if (c && /^[a-z0-9_-]{1,32}$/.test(c)) out.constraint = c;
  return out;
}

export function runInfo(r: MlflowRunRow) {
  return {
    run_id: r.id,
    run_uuid: r.id,
    run_name: r.name,
    experiment_id: r.project_id,
    user_id: r.kv_tags['mlflow.user'] ?? '',
    status: STATUS[r.status] ?? 'RUNNING',
    start_time: (r.started_at ?? r.created_at).getTime(),
    ...(r.finished_at ? { end_time: r.finished_at.getTime() } : {}),
    artifact_uri: `mlflow-artifacts:/${r.project_id}/${r.id}/artifacts`,
    lifecycle_stage: 'active',
  };
}

/** Runs in MLflow's shape: info, and data with each metric's latest value, the params and the tags. */
export async function runsJson(ctx: Ctx, rows: MlflowRunRow[]) {
  if (!rows.length) return [];
  const byRun = new Map<string, { key: string; value: number; timestamp: number; step: number }[]>();
  for (const x of await lastMetricValues(
    ctx.db.pool,
    rows.map((r) => r.id),
  ))
    (byRun.get(x.run_id) ?? byRun.set(x.run_id, []).get(x.run_id)!).push({
      key: x.key,
      value: x.last_value,
      timestamp: x.t.getTime(),
      step: x.last_step,
    });
  return rows.map((r) => ({
    info: runInfo(r),
    data: {
      metrics: byRun.get(r.id) ?? [],
      params: configParams(r.config),
      tags: Object.entries({ ...r.kv_tags, 'mlflow.runName': r.name }).map(([key, value]) => ({
        key,
        value: String(value),
      })),
    },
    inputs: {},
  }));
}

export const create: Endpoint = async (ctx, input) => {
  const i = parse(
    z.object({
      experiment_id: z.string().min(1).max(64).default('0'),
      user_id: z.string().max(200).optional(),
      run_name: z.string().max(200).optional(),
      start_time: epochMs('start_time').optional(),
      tags: z.array(tag).max(1000, 'a request can contain at most 1000 tags').default([]),
    }),
    input,
  );
  const exp = await experimentOf(ctx, i.experiment_id, true);
  const tags: Record<string, string> = Object.fromEntries(i.tags.map((t) => [t.key, t.value]));
  if (i.user_id) tags['mlflow.user'] ??= i.user_id;
  const cols = columnsFromTags(tags);
  const runName = (i.run_name || cols.name || `external-${randomBytes(3).toString('hex')}`).slice(0, 200);
  tags['mlflow.runName'] = runName;
  const id = await createMlflowRun(ctx.db.pool, {
    projectId: exp.id,
    name: runName,
    method: cols.method ?? 'external',
    constraint: cols.constraint ?? 'none',
    startedAt: new Date(i.start_time ?? Date.now()),
    kvTags: tags,
    configHash: configHash({}),
  });
  return { run: (await runsJson(ctx, [await runOf(ctx, id)]))[0] };
};

export const get: Endpoint = async (ctx, input) => {
  const id = runIdOf(parse(runId, input));
  return { run: (await runsJson(ctx, [await runOf(ctx, id)]))[0] };
};

export const update: Endpoint = async (ctx, input) => {
  const i = parse(
    runId.extend({
      status: z
        .enum(['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED'], {
          message: 'status is one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED',
        })
        .optional(),
      end_time: epochMs('end_time').optional(),
      run_name: z.string().min(1).max(200).optional(),
    }),
    input,
  );
  const id = runIdOf(i);
  const status = i.status ? FROM_STATUS[i.status]! : null;
  await updateMlflowRun(ctx.db.pool, id, ctx.actor.teamId, {
    status,
    name: i.run_name ?? null,
    endTime: i.end_time !== undefined ? new Date(i.end_time) : null,
  });
  if (status) await alertOnStatus(alerting(ctx), id, status);
  return { run_info: runInfo(await runOf(ctx, id)) };
};

/** Deletes the run with all it logged and its uploaded files; audited in the transaction that deletes it. */
export const remove: Endpoint = async (ctx, input) => {
  const id = runIdOf(parse(runId, input));
  await deleteRun(ctx.db.pool, id, ctx.actor.teamId, (c, run) =>
    audit(
      ctx.db,
      {
        teamId: ctx.actor.teamId,
        userId: ctx.actor.userId,
        keyId: ctx.actor.keyId,
        action: 'run.delete',
        target: id,
        details: { name: run.name, via: 'mlflow' },
        ip: ctx.ip,
      },
      c,
    ),
  );
  await removeRunArtifactFiles(ctx.opts.artifactDir, id);
  return {};
};
