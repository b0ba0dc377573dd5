/**
 * What a run token (libs/db/src/run-tokens.ts) may call: the procedures a training job needs, each naming the input
 * field that holds the run(s) it touches. Writes must name the token's own run (else 403); reads may also name the
 * runs it trains from — any other id answers 404, exactly as a missing run does, so a token learns nothing of other
 * runs. Every other procedure is refused with 403.
 */
import { TRPCError } from '@trpc/server';
import type { RunGrant } from '@aft/db';

type Access = { write: true; field: 'id' | 'runId' } | { write: false; field: 'id' | 'runId' | 'runIds' };

export const RUN_TOKEN_PROCEDURES: Readonly<Record<string, Access>> = {
  'runs.start': { write: true, field: 'id' },
  'runs.setStatus': { write: true, field: 'id' },
  'runs.setSummary': { write: true, field: 'id' },
  'metrics.log': { write: true, field: 'runId' },
  'samples.log': { write: true, field: 'runId' },
  'events.log': { write: true, field: 'runId' },
  'artifacts.register': { write: true, field: 'runId' },
  'runs.get': { write: false, field: 'id' },
  'metrics.series': { write: false, field: 'runIds' },
  'metrics.seriesPacked': { write: false, field: 'runIds' },
  'artifacts.list': { write: false, field: 'runId' },
};

/** Throws unless a run token with this grant may call `path` with `input` (the raw input, before parsing). */
export function assertRunAccess(grant: RunGrant, path: string, input: unknown): void {
  const access = RUN_TOKEN_PROCEDURES[path];
  if (!access) {
    throw new TRPCError({
      code: 'FORBIDDEN',
      message: `a run token may only report on its own run (${Object.keys(RUN_TOKEN_PROCEDURES).join(', ')}); ${path} needs an API key or a signed-in user`,
    });
  }
  const raw = input && typeof input === 'object' ? (input as Record<string, unknown>)[access.field] : undefined;
  const ids = Array.isArray(raw) ? raw : [raw];
  // a malformed input is left to the procedure's own validation, which names the field
  for (const id of ids) {
    if (typeof id !== 'string') continue;
    if (access.write && id !== grant.runId) {
      throw new TRPCError({
        code: 'FORBIDDEN',
        message: `${access.field}: this run token may only write run ${grant.runId}`,
      });
    }
    if (!access.write && !grant.readable.includes(id)) {
      throw new TRPCError({ code: 'NOT_FOUND', message: `run ${id} not found` });
    }
  }
}
