import { createAlertDeliveryHandler } from '@aft/api';
import { server } from '../../../../server/api';
import { env } from '../../../../env';

export const dynamic = 'force-dynamic';

let handler: ((req: Request) => Promise<Response>) | null = null;

/** Workers claim and report alert delivery attempts here, each with its firing's token (libs/api/src/alerts). */
export function POST(req: Request) {
  handler ??= createAlertDeliveryHandler({ db: server().db, publicUrl: env().AFT_PUBLIC_URL ?? null });
  return handler(req);
}
