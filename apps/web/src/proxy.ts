import { NextResponse, type NextRequest } from 'next/server';
import { getSessionCookie } from 'better-auth/cookies';
import { safeNextPath } from './lib/safe-next';

/**
 * Pages need a signed-in user: without a session cookie the browser goes to the sign-in page, which brings it back
 * here afterwards. (Only the cookie's presence is checked here; every procedure checks the session itself.)
 */
export function proxy(req: NextRequest) {
  if (getSessionCookie(req)) return NextResponse.next();
  const url = new URL('/sign-in', req.url);
  const next = safeNextPath(req.nextUrl.pathname + req.nextUrl.search);
  if (next !== '/') url.searchParams.set('next', next);
  return NextResponse.redirect(url);
}

export const config = {
  // everything but the APIs (tRPC, auth, export, MLflow: they answer 401 themselves), the sign-in page and static files
  matcher: ['/((?!api/|ajax-api/|get-artifact|_next/|sign-in|favicon\\.ico).*)'],
};
