/**
 * The platform's side of an alert delivery (docs/architecture.md, "Alerts"). The worker holds no database access
 * and no team key: for each attempt it claims what to send with the firing's own token — the attempt is counted
 * and the body signed here, with the rule's secret, which never leaves Postgres — then reports how the POST went.
 * `alertDeliveryApi` is that pair over the data layer (what tests hand the consumer); `createAlertDeliveryHandler`
 * serves it to workers at `POST /api/alerts/delivery`.
 */
import { z } from 'zod';
import { pgText } from '@aft/contracts';
import { claimAlertAttempt, reportAlertAttempt, type Db } from '@aft/db';
import type { AlertDeliveryApi } from '@aft/queue';
import { readBodyText, BodyTooLargeError } from '../body';
import { describeZodError } from '../trpc';
import { alertBody, alertHeaders, type AlertEvent } from './message';

/** The pair the alert consumer calls, straight over the data layer; `baseUrl` is the dashboard's, for links. */
export function alertDeliveryApi(db: Db, baseUrl: string): AlertDeliveryApi {
  return {
    async claim(job) {
      const a = await claimAlertAttempt(db, job.deliveryId, job.token);
      if (!a) return { done: 'no such delivery: its rule was deleted' };
      if ('done' in a) return a;
      const body = alertBody(a.id, a.payload as unknown as AlertEvent, baseUrl);
      return { attempt: a.attempt, url: a.url, body, headers: alertHeaders(a.secret, body, a) };
    },
    async report(job, r) {
      await reportAlertAttempt(db, job.deliveryId, job.token, r);
    },
  };
}

const ids = {
  deliveryId: z.string().min(1).max(64),
  token: z.string().min(1).max(100),
};
const request = z.discriminatedUnion('op', [
  z.object({ op: z.literal('claim'), ...ids }).strict(),
  z
    .object({
      op: z.literal('report'),
      ...ids,
      attempt: z.number().int().min(1).max(1000),
      status: z.number().int().min(100).max(599).nullable(),
      // what the worker reports is stored as is: text Postgres can hold (a 400 here, never a 500)
      error: pgText.max(1000).nullable(),
      delivered: z.boolean(),
    })
    .strict(),
]);
export type AlertDeliveryRequest = z.infer<typeof request>;

/** The address the worker called (its Host header: Next.js rewrites the request URL's host to its own name). */
function calledOrigin(req: Request): string {
  const u = new URL(req.url);
  const host = req.headers.get('host') ?? '';
  return /^([\w.-]+|\[[\da-f:.]+\])(:\d{1,5})?$/i.test(host) ? `${u.protocol}//${host}` : u.origin;
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

/**
 * `POST /api/alerts/delivery` with `{ op: "claim" | "report", deliveryId, token, … }`. The token is the credential:
 * a wrong one gets the same answer as a deleted rule. `publicUrl` (AFT_PUBLIC_URL) makes the links in alerts; else
 * the address the worker called.
 */
export function createAlertDeliveryHandler(opts: { db: Db; publicUrl?: string | null }) {
  return async (req: Request): Promise<Response> => {
    if (req.method !== 'POST') return json(405, { error: 'use POST' });
    let parsed;
    try {
      parsed = request.safeParse(JSON.parse(await readBodyText(req, 4096)));
    } catch (e) {
      if (e instanceof BodyTooLargeError) return json(413, { error: e.message });
      return json(400, { error: 'the body is not JSON' });
    }
    if (!parsed.success) return json(400, { error: describeZodError(parsed.error) });
    const { op, deliveryId, token } = parsed.data;
    const api = alertDeliveryApi(opts.db, opts.publicUrl ?? calledOrigin(req));
    if (op === 'claim') return json(200, await api.claim({ deliveryId, token }));
    const { attempt, status, error, delivered } = parsed.data;
    await api.report({ deliveryId, token }, { attempt, status, error, delivered });
    return json(200, { ok: true });
  };
}
