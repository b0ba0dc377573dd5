/**
 * MLflow's searches (POST or GET): experiments by name, and runs by MLflow's filter grammar, which libs/db
 * compiles (libs/db/src/mlflow/filter.ts). Both page with base64url offsets.
 */
import { z } from 'zod';
import {
  FilterError,
  prepareRunSearch,
  searchExperiments,
  searchMlflowRuns,
  type ExperimentNameOp,
  type ExperimentOrderField,
  type RunSearch,
} from '@aft/db';
import { experimentJson, experimentOf } from './experiments';
import { runsJson } from './runs';
import { bad, list, maxResults, MLFLOW_LIMITS, MlflowError, nextPage, pageOffset, pageToken, parse } from './wire';
import type { Endpoint } from './wire';

/** `name LIKE 'x%' AND name != 'y'`: experiments filter on their name only. */
function experimentNameFilter(filter: string): { op: ExperimentNameOp; value: string }[] {
  // one whitespace character on each side, not \s+: that retried each run of spaces from every position in it
  return filter
    .split(/\sAND\s/i)
    .filter((s) => s.trim())
    .map((clause) => {
      const m = /^\s*(?:attributes?\.)?(name|experiment_name)\s*(=|!=|LIKE|ILIKE)\s*(['"])(.*)\3\s*$/i.exec(clause);
      if (!m)
        throw bad(
          `Invalid experiment filter "${clause}": filter on name with =, !=, LIKE or ILIKE, e.g. name LIKE 'gsm8k%'`,
        );
      return { op: m[2]!.toUpperCase() as ExperimentNameOp, value: m[4]! };
    });
}

function experimentOrder(orderBy: readonly string[]): { field: ExperimentOrderField; desc: boolean }[] {
  return orderBy.map((o) => {
    const m = /^\s*(?:attributes?\.)?(name|experiment_id|creation_time|last_update_time)(?:\s+(ASC|DESC))?\s*$/i.exec(
      o,
    );
    if (!m)
      throw bad(`Invalid order_by "${o}": order experiments by name, experiment_id, creation_time or last_update_time`);
    return { field: m[1]!.toLowerCase() as ExperimentOrderField, desc: m[2]?.toUpperCase() === 'DESC' };
  });
}

export const experiments: Endpoint = async (ctx, input) => {
  const i = parse(
    z.object({
      max_results: maxResults(50_000, 1000),
      page_token: pageToken,
      filter: z.string().max(2000).optional(),
      order_by: list(z.string().max(200), 20).optional(),
      view_type: z.enum(['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL']).default('ACTIVE_ONLY'),
    }),
    input,
  );
  if (i.view_type === 'DELETED_ONLY') return { experiments: [] };
  const names = experimentNameFilter(i.filter ?? '');
  const offset = pageOffset(i.page_token);
  const orderBy = experimentOrder(i.order_by ?? []);
  const rows = await searchExperiments(ctx.db.pool, ctx.actor.teamId, {
    names,
    orderBy,
    limit: i.max_results + 1,
    offset,
  });
  return {
    experiments: rows.slice(0, i.max_results).map(experimentJson),
    ...nextPage(offset, rows.length, i.max_results),
  };
};

/** MLflow's older ListExperiments: a search of up to 1000 without the paging token in its answer. */
export const listExperiments: Endpoint = async (ctx, input) => {
  const r = (await experiments(ctx, { ...input, max_results: input['max_results'] ?? 1000 })) as {
    experiments: unknown[];
  };
  return { experiments: r.experiments };
};

export const runs: Endpoint = async (ctx, input) => {
  const i = parse(
    z.object({
      experiment_ids: list(z.string().min(1).max(64), 1000).default([]),
      filter: z.string().max(10_000).optional(),
      run_view_type: z.enum(['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL']).default('ACTIVE_ONLY'),
      max_results: maxResults(MLFLOW_LIMITS.searchMaxResults, 1000),
      order_by: list(z.string().max(300), 20).optional(),
      page_token: pageToken,
    }),
    input,
  );
  if (!i.experiment_ids.length) throw bad('experiment_ids must name at least one experiment');
  if (i.run_view_type === 'DELETED_ONLY') return { runs: [] };
  const ids: string[] = [];
  for (const e of i.experiment_ids) {
    try {
      ids.push((await experimentOf(ctx, e)).id);
    } catch (err) {
      if (!(err instanceof MlflowError)) throw err; // an experiment that is not the team's matches no run
    }
  }
  let search: RunSearch;
  try {
    search = prepareRunSearch(i.filter ?? '', i.order_by ?? []);
  } catch (e) {
    if (e instanceof FilterError) throw bad(`Invalid filter: ${e.message}`);
    throw e;
  }
  const offset = pageOffset(i.page_token);
  const rows = await searchMlflowRuns(ctx.db.pool, ids, search, { limit: i.max_results + 1, offset });
  return {
    runs: await runsJson(ctx, rows.slice(0, i.max_results)),
    ...nextPage(offset, rows.length, i.max_results),
  };
};
