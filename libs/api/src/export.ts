/**
 * `GET /api/export?project=<id>` or `?sweep=<id>`: a project or a sweep as a streamed .tar.gz (libs/db export.ts
 * lists its files). Authorized like `projects.get` / `sweeps.get` (a session or a key with the `read` scope), with
 * the same answers for what is missing or not the caller's.
 */
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import { TRPCError } from '@trpc/server';
import { z } from 'zod';
import { generateExportTarGz, projectTeamId } from '@aft/db';
import { id } from '@aft/contracts';
import { downloadHeaders } from './artifact-files';
import { requestContext, type ApiHandlerOptions } from './http';
import { appRouter } from './root';
import { crossSiteRefusal } from './same-origin';
import { createCallerFactory, describeZodError } from './trpc';

const query = z
  .object({ project: id.optional(), sweep: id.optional() })
  .strict()
  .refine((q) => (q.project ? 1 : 0) + (q.sweep ? 1 : 0) === 1, {
    message: 'give exactly one of ?project=<id> or ?sweep=<id>',
  });

function errorResponse(status: number, code: string, message: string) {
  return new Response(JSON.stringify({ error: { code, message } }), {
    status,
    headers: { 'content-type': 'application/json' },
  });
}

const fileName = (s: string) =>
  s
    .replace(/[^\w.-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 80) || 'export';

export function createExportHandler(opts: Pick<ApiHandlerOptions, 'db' | 'notifier' | 'auth'>) {
  return async (req: Request): Promise<Response> => {
    if (req.method !== 'GET') return errorResponse(405, 'METHOD_NOT_SUPPORTED', 'use GET');
    const parsed = query.safeParse(Object.fromEntries(new URL(req.url).searchParams));
    if (!parsed.success) return errorResponse(400, 'BAD_REQUEST', describeZodError(parsed.error));
    const ctx = await requestContext(opts, req.headers);
    // the session cookie rides along on a link from any site: only our own pages may export with it
    const refusal = ctx.userId && !ctx.apiKey ? crossSiteRefusal(req.headers, req.url, false) : null;
    if (refusal) return errorResponse(403, 'FORBIDDEN', refusal);
    const caller = createCallerFactory(appRouter)(ctx);
    let name: string;
    let projectId: string;
    try {
      if (parsed.data.sweep) {
        const s = await caller.sweeps.get({ id: parsed.data.sweep });
        name = `${s.project.name}-${s.name}`;
        projectId = s.project.id;
      } else {
        const p = await caller.projects.get({ id: parsed.data.project! });
        name = p.name;
        projectId = p.id;
      }
    } catch (e) {
      if (e instanceof TRPCError) return errorResponse(getHTTPStatusCodeFromError(e), e.code, e.message);
      throw e;
    }
    const teamId = await projectTeamId(opts.db, projectId);
    // the project was just read as the caller's: only a delete in between leaves it without a team
    if (!teamId) throw new Error(`project ${projectId} was deleted while its export started`);
    const scope = parsed.data.sweep ? { sweepId: parsed.data.sweep } : { projectId };
    // pulled member by member as the client reads: a slow client slows the export instead of filling memory
    const it = generateExportTarGz(opts.db.pool, teamId, scope)[Symbol.asyncIterator]();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { value, done } = await it.next();
        if (done) controller.close();
        else controller.enqueue(value);
      },
      async cancel() {
        await it.return?.(undefined);
      },
    });
    return new Response(body, {
      headers: {
        'content-type': 'application/gzip',
        ...downloadHeaders(`${fileName(name)}.aft.tar.gz`),
        'cache-control': 'no-store',
      },
    });
  };
}
