/**
 * What MLflow clients log to a run: metrics (metric points with their timestamps), params (config entries,
 * immutable once logged, as in MLflow) and tags (the run's key-value tags), one at a time or in a batch; and a
 * metric's history read back. Writes follow the rule of libs/db/src/touch.ts (docs/architecture.md, "Data model").
 */
import { z } from 'zod';
import {
  copyLastMetricsToSummary,
  deleteRunKvTag,
  insertMetricPoints,
  metricHistory,
  setRunConfig,
  setRunKvTags,
  writeToMlflowRun,
  type MlflowRunRow,
} from '@aft/db';
import { alertOnMetrics } from '../alerts/fire';
import { configHash } from '../router/runs';
import { alerting, columnsFromTags, configParams, runOf } from './runs';
import {
  bad,
  maxResults,
  metric,
  MLFLOW_LIMITS,
  MlflowError,
  name,
  nextPage,
  pageOffset,
  pageToken,
  param,
  parse,
  runId,
  runIdOf,
  tag,
  type Ctx,
  type Endpoint,
} from './wire';

/** The client of the transaction that writes the run (writeToMlflowRun), as libs/db types it. */
type RunTransaction = Parameters<typeof setRunConfig>[0];

/** A param value as stored: a plain decimal becomes a number (so config filters and charts can use it), else the string. */
function storedParam(v: string): string | number {
  return /^-?(0|[1-9]\d{0,14})(\.\d+)?$/.test(v) && String(Number(v)) === v ? Number(v) : v;
}

/** Params are immutable once logged: the same value again is fine, a different one is refused (MLflow's rule). */
async function logParams(c: RunTransaction, run: MlflowRunRow, ps: { key: string; value: string }[]) {
  const existing = new Map(configParams(run.config).map((p) => [p.key, p.value]));
  const next: Record<string, string | number> = {};
  for (const p of ps) {
    const had = existing.get(p.key) ?? (next[p.key] !== undefined ? String(next[p.key]) : undefined);
    if (had !== undefined && had !== p.value) {
      throw bad(
        `Changing param values is not allowed. Param with key='${p.key}' was already logged with value='${had}' for run ID='${run.id}'. Attempted logging new value '${p.value}'.`,
      );
    }
    next[p.key] = storedParam(p.value);
  }
  const fresh = Object.fromEntries(Object.entries(next).filter(([k]) => !existing.has(k)));
  if (!Object.keys(fresh).length) return;
  const config = { ...run.config, ...fresh };
  if (!(await setRunConfig(c, run.id, config, configHash(config))))
    throw bad(`Run with id=${run.id} is being trained by the platform: its params are fixed until it ends.`);
}

function setTags(c: RunTransaction, run: MlflowRunRow, tags: Record<string, string>) {
  return setRunKvTags(c, run.id, tags, columnsFromTags(tags));
}

/** Stores points of a run of the team (RunNotFoundError, answered as RESOURCE_DOES_NOT_EXIST, when it is not). */
async function logMetrics(ctx: Ctx, runId: string, ms: z.infer<typeof metric>[]) {
  if (!ms.length) return;
  const keys = [...new Set(ms.map((m) => m.key))];
  const idx = new Map(keys.map((k, i) => [k, i]));
  const now = Date.now();
  const columns = {
    keys,
    key: ms.map((m) => idx.get(m.key)!),
    step: ms.map((m) => m.step),
    value: ms.map((m) => m.value),
    time: ms.map((m) => m.timestamp ?? now),
  };
  await insertMetricPoints(ctx.db.pool, runId, columns, { teamId: ctx.actor.teamId });
  // the latest value of each key into the run's summary, so the runs table and the results can sort on it
  await copyLastMetricsToSummary(ctx.db.pool, runId, ctx.actor.teamId, keys);
  await alertOnMetrics(alerting(ctx), runId, columns);
}

export const logMetric: Endpoint = async (ctx, input) => {
  const i = parse(runId.and(metric), input);
  await logMetrics(ctx, runIdOf(i), [i]);
  return {};
};

export const logParameter: Endpoint = async (ctx, input) => {
  const i = parse(runId.and(param), input);
  await writeToMlflowRun(ctx.db.pool, runIdOf(i), ctx.actor.teamId, (c, run) => logParams(c, run, [i]));
  return {};
};

export const setTag: Endpoint = async (ctx, input) => {
  const i = parse(runId.and(tag), input);
  await writeToMlflowRun(ctx.db.pool, runIdOf(i), ctx.actor.teamId, (c, run) => setTags(c, run, { [i.key]: i.value }));
  return {};
};

export const deleteTag: Endpoint = async (ctx, input) => {
  const i = parse(runId.extend({ key: name('tag key') }), input);
  await writeToMlflowRun(ctx.db.pool, runIdOf(i), ctx.actor.teamId, async (c, run) => {
    if (!(i.key in run.kv_tags))
      throw new MlflowError('RESOURCE_DOES_NOT_EXIST', `No tag with name: ${i.key} in run with id ${run.id}`);
    await deleteRunKvTag(c, run.id, i.key);
  });
  return {};
};

/** MLflow's limits on a batch, checked before anything else is read or written. */
function checkBatchSize(input: Record<string, unknown>) {
  const count = (k: string) => (Array.isArray(input[k]) ? (input[k] as unknown[]).length : 0);
  const [nm, np, nt] = [count('metrics'), count('params'), count('tags')];
  const over = (n: number, max: number, what: string) => {
    if (n > max)
      throw bad(
        `A batch logging request can contain at most ${max} ${what}. Got ${n} ${what}. Please split up ${what} across multiple requests and try again.`,
      );
  };
  over(nm, MLFLOW_LIMITS.metricsPerBatch, 'metrics');
  over(np, MLFLOW_LIMITS.paramsPerBatch, 'params');
  over(nt, MLFLOW_LIMITS.tagsPerBatch, 'tags');
  if (nm + np + nt > MLFLOW_LIMITS.entitiesPerBatch) {
    throw bad(
      `A batch logging request can contain at most ${MLFLOW_LIMITS.entitiesPerBatch} metrics, params, and tags in total. Got ${nm + np + nt} in total.`,
    );
  }
}

export const logBatch: Endpoint = async (ctx, input) => {
  checkBatchSize(input);
  const i = parse(
    runId.extend({
      metrics: z.array(metric).default([]),
      params: z.array(param).default([]),
      tags: z.array(tag).default([]),
    }),
    input,
  );
  const id = runIdOf(i);
  // params and tags first, in one transaction (a conflicting param refuses the whole batch), then the metrics
  await writeToMlflowRun(ctx.db.pool, id, ctx.actor.teamId, async (c, run) => {
    await logParams(c, run, i.params);
    if (i.tags.length) await setTags(c, run, Object.fromEntries(i.tags.map((t) => [t.key, t.value])));
  });
  await logMetrics(ctx, id, i.metrics);
  return {};
};

export const getHistory: Endpoint = async (ctx, input) => {
  const i = parse(
    runId.extend({
      metric_key: z.string({ message: "Missing value for required parameter 'metric_key'." }).min(1).max(250),
      max_results: maxResults(MLFLOW_LIMITS.historyMaxResults, MLFLOW_LIMITS.historyMaxResults),
      page_token: pageToken,
    }),
    input,
  );
  const run = await runOf(ctx, runIdOf(i));
  const offset = pageOffset(i.page_token);
  const points = await metricHistory(ctx.db.pool, run.num, i.metric_key, { limit: i.max_results + 1, offset });
  return {
    metrics: points
      .slice(0, i.max_results)
      .map((p) => ({ key: i.metric_key, value: p.value, timestamp: Number(p.t), step: p.step })),
    ...nextPage(offset, points.length, i.max_results),
  };
};
