import { api } from '../../../server/api';
import { found } from '../../../server/found';

export const dynamic = 'force-dynamic';

/**
 * A saved view's shareable link: a 307 to the view's page with its query, after `views.get` has checked that the
 * view is of the team being worked in. Any other id (unknown, malformed, another team's) is a 404 alike. A route
 * rather than a page: a page renders inside the app's loading boundary, so its redirect would reach the browser as a
 * client-side refresh after the shell, and its "not found" with a 200 status.
 */
export async function GET(_req: Request, props: { params: Promise<{ viewId: string }> }) {
  const { viewId } = await props.params;
  const caller = await api();
  const view = await found(caller.views.get({ id: viewId }));
  if (!view) return new Response(MISSING, { status: 404, headers: { 'content-type': 'text/html; charset=utf-8' } });
  // a path on this site, so a relative Location: right behind any proxy, and never another origin
  return new Response(null, { status: 307, headers: { location: view.href, 'cache-control': 'no-store' } });
}

const MISSING = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>View not found · AFT Lab</title>
<style>body{margin:0;background:#0f1115;color:#e6e9ef;font:14px/1.45 system-ui,sans-serif}
main{max-width:640px;margin:60px auto;padding:16px;border:1px solid #f16063;border-radius:8px}a{color:#6ea8fe}</style>
</head><body><main role="alert"><strong>Not found: this saved view does not exist</strong>
<p>It may have been deleted, the link is wrong, or it belongs to another of your teams (switch team in the header
and open the link again).</p><p><a href="/">All projects</a></p></main></body></html>`;
