/**
 * The cross-site guard for requests made with the session cookie outside tRPC (the MLflow API, its artifact routes,
 * `/api/export`). A browser attaches the cookie to any request a foreign page makes (a link, an <img>, a form), so
 * such a request must show it came from this site: Sec-Fetch-Site when the browser sends it (every current one
 * does), else Origin. Requests with an API key are never checked: a foreign page cannot make a browser send one.
 */

/** The hosts this request was addressed to: what the browser put in Host, and what a proxy in front forwarded. */
function requestHosts(headers: Headers, url: string): string[] {
  const hosts = [new URL(url).host];
  for (const h of [headers.get('host'), headers.get('x-forwarded-host')?.split(',')[0]]) {
    if (h?.trim()) hosts.push(h.trim().toLowerCase());
  }
  return hosts;
}

/**
 * Why a cookie-authenticated request is refused as cross-site, or null when it may go on. `write`: the request
 * changes something; then a request with neither header (no current browser sends that) is refused too.
 */
export function crossSiteRefusal(headers: Headers, url: string, write: boolean): string | null {
  const site = headers.get('sec-fetch-site');
  if (site !== null) {
    // `none`: the user typed the address or opened a bookmark; same-site is refused (another subdomain is not us)
    if (site === 'same-origin' || site === 'none') return null;
    return `refused a ${site} request made with the session cookie (Sec-Fetch-Site: ${site}): open this from the app itself, or send an API key`;
  }
  const origin = headers.get('origin');
  if (origin !== null) {
    let host: string | null = null;
    try {
      host = new URL(origin).host;
    } catch {
      // `null` (a sandboxed frame, a redirect across sites) or junk: not this site
    }
    if (host && requestHosts(headers, url).includes(host)) return null;
    return `refused a cross-site request made with the session cookie (Origin: ${origin.slice(0, 200)}): send an API key instead`;
  }
  return write
    ? 'refused a write made with the session cookie without an Origin or Sec-Fetch-Site header: scripts send an API key instead'
    : null;
}
