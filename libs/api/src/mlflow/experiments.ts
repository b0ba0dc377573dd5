/**
 * MLflow's experiments endpoints. An experiment is a project of the key's team; experiment "0" is the project
 * "Default", made when a run is first logged to it.
 */
import { z } from 'zod';
import {
  createExperiment,
  DEFAULT_EXPERIMENT_ID,
  ensureDefaultExperiment,
  findExperiment,
  findExperimentByName,
  type ExperimentRow,
} from '@aft/db';
import { MlflowError, parse, tag, type Ctx, type Endpoint } from './wire';

export function experimentJson(p: ExperimentRow) {
  return {
    experiment_id: p.id,
    name: p.name,
    artifact_location: `mlflow-artifacts:/${p.id}`,
    lifecycle_stage: 'active',
    creation_time: p.created_at.getTime(),
    last_update_time: (p.updated ?? p.created_at).getTime(),
    tags: p.description ? [{ key: 'mlflow.note.content', value: p.description }] : [],
  };
}

/** A project of the team by id; with `createDefault`, experiment "0" is made when the team has none yet. */
export async function experimentOf(ctx: Ctx, id: string, createDefault = false): Promise<ExperimentRow> {
  if (createDefault && id === DEFAULT_EXPERIMENT_ID) await ensureDefaultExperiment(ctx.db.pool, ctx.actor.teamId);
  const row = await findExperiment(ctx.db.pool, ctx.actor.teamId, id);
  if (row) return row;
  throw new MlflowError('RESOURCE_DOES_NOT_EXIST', `No Experiment with id=${id} exists`);
}

export const create: Endpoint = async (ctx, input) => {
  const i = parse(
    z.object({
      name: z
        .string({ message: "Missing value for required parameter 'name'." })
        .trim()
        .min(1, 'Experiment name must not be empty')
        .max(100),
      artifact_location: z.string().optional(),
      tags: z.array(tag).max(100).optional(),
    }),
    input,
  );
  const note = i.tags?.find((t) => t.key === 'mlflow.note.content')?.value ?? '';
  const id = await createExperiment(ctx.db.pool, ctx.actor.teamId, { name: i.name, description: note });
  if (!id) throw new MlflowError('RESOURCE_ALREADY_EXISTS', `Experiment '${i.name}' already exists.`);
  return { experiment_id: id };
};

export const get: Endpoint = async (ctx, input) => {
  const i = parse(
    z.object({
      experiment_id: z.string({ message: "Missing value for required parameter 'experiment_id'." }).min(1).max(64),
    }),
    input,
  );
  return { experiment: experimentJson(await experimentOf(ctx, i.experiment_id)) };
};

export const getByName: Endpoint = async (ctx, input) => {
  const i = parse(
    z.object({
      experiment_name: z.string({ message: "Missing value for required parameter 'experiment_name'." }).min(1).max(200),
    }),
    input,
  );
  const row = await findExperimentByName(ctx.db.pool, ctx.actor.teamId, i.experiment_name);
  if (!row)
    throw new MlflowError('RESOURCE_DOES_NOT_EXIST', `Could not find experiment with name '${i.experiment_name}'`);
  return { experiment: experimentJson(row) };
};
