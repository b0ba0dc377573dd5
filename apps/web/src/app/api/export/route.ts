import { createExportHandler } from '@aft/api';
import { server } from '../../../server/api';

export const dynamic = 'force-dynamic';

let handler: ((req: Request) => Promise<Response>) | null = null;

/** A project (?project=<id>) or a sweep (?sweep=<id>) as a streamed .tar.gz of JSON lines and CSV. */
export function GET(req: Request) {
  handler ??= createExportHandler(server());
  return handler(req);
}
