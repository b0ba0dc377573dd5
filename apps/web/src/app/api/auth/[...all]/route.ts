import { bodyLimited } from '@aft/api';
import { server } from '../../../../server/api';

export const dynamic = 'force-dynamic';

// better-auth's endpoints: /api/auth/sign-up/email, /sign-in/email, /sign-out, /get-session, …
// sign-up and sign-in bodies are a few hundred bytes; better-auth itself would read a body of any size
const handle = bodyLimited((req: Request) => server().auth.handler(req), 64 * 1024);
export { handle as GET, handle as POST };
