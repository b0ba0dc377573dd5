/**
 * Where to go after signing in (`?next=`): a path of this site, or `fallback`. Anything else could send a user
 * who trusts our sign-in page to another site. Browsers read `\` as `/` and drop tabs and newlines inside URLs, so
 * `/\evil.example` and `/<tab>/evil.example` are `//evil.example` — another host; those, anything percent-encoded
 * to look like them, and every absolute URL (`https:`, `javascript:`) are refused rather than repaired.
 */
export function safeNextPath(next: unknown, fallback = '/'): string {
  // eslint-disable-next-line no-control-regex
  if (typeof next !== 'string' || next.length > 2048 || /[\u0000-\u001f\u007f]/.test(next)) return fallback;
  // the path decides the host a browser goes to; the query and fragment may hold anything, encoded
  const path = next.split(/[?#]/, 1)[0]!;
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return fallback;
  }
  for (const p of [path, decoded]) {
    // eslint-disable-next-line no-control-regex
    if (/[\\\u0000-\u001f\u007f]/.test(p) || !p.startsWith('/') || p.startsWith('//')) return fallback;
  }
  const base = 'http://aft.invalid';
  let url: URL;
  try {
    url = new URL(next, base);
  } catch {
    return fallback;
  }
  return url.origin === base ? url.pathname + url.search + url.hash : fallback;
}
