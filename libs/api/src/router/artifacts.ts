import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { artifactInput, id } from '@aft/contracts';
import { listArtifacts, registerArtifact, STORED_ARTIFACT_PREFIX } from '@aft/db';
import { logProcedure, readProcedure } from '../trpc';
import { assertRuns } from './metrics';

export const artifactsRouter = {
  /** Registers a checkpoint, sample set, dataset or report; the same (run, uri) again updates it. */
  register: logProcedure.input(artifactInput).mutation(async ({ ctx, input }) => {
    const { runId, ...a } = input;
    // the server's own uploads are recorded by the upload itself, with the bytes it counted against the team's
    // quota: a registration may not claim (or rewrite the size of) one
    if (a.uri.startsWith(STORED_ARTIFACT_PREFIX)) {
      throw new TRPCError({
        code: 'BAD_REQUEST',
        message: `uri: ${STORED_ARTIFACT_PREFIX} URIs are files uploaded to this server; they are recorded when uploaded`,
      });
    }
    const artifactId = await registerArtifact(ctx.db.pool, runId, ctx.actor.teamId, a);
    return { id: artifactId };
  }),

  list: readProcedure.input(z.object({ runId: id })).query(async ({ ctx, input }) => {
    await assertRuns(ctx.db, ctx.actor.teamId, [input.runId]);
    return listArtifacts(ctx.db, input.runId);
  }),
};
