import { server } from '../../../../server/api';

export const dynamic = 'force-dynamic';

// better-auth's endpoints: /api/auth/sign-up/email, /sign-in/email, /sign-out, /get-session, …
const handle = (req: Request) => server().auth.handler(req);
export { handle as GET, handle as POST };
