import { server } from '../../../../server/api';

export const dynamic = 'force-dynamic';

const handle = (req: Request) => server().handler(req);
export { handle as GET, handle as POST };
