/**
 * Timed GETs for the benchmarks, from the request to the last byte of the body. Timed with curl where it is
 * installed (as a browser reads: native code, its own process): on the 2-core machine Node 20's fetch took 17 ms
 * to read a 1.1 MB series response that curl read in 1 ms, and node:http 10 ms, so a Node-timed benchmark
 * measured its own client as much as the server. Without curl, node:http with a keep-alive agent. `client` in a
 * benchmark's JSON says which.
 */
import { execFile, execFileSync } from 'node:child_process';
import { Agent, request } from 'node:http';

const agent = new Agent({ keepAlive: true, maxSockets: 8 });

export const TIMING_CLIENT: 'curl' | 'node:http' = (() => {
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' });
    return 'curl';
  } catch {
    return 'node:http';
  }
})();

/** A GET's body, status and milliseconds, read with node:http. */
export function httpGet(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const ms = performance.now() - t0;
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), ms });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A GET's milliseconds to the last byte (the body is read and dropped), with TIMING_CLIENT; throws on a non-2xx. */
export async function timedGet(url: string, headers: Record<string, string> = {}): Promise<number> {
  if (TIMING_CLIENT === 'node:http') {
    const r = await httpGet(url, headers);
    if (r.status < 200 || r.status > 299) throw new Error(`GET ${url}: ${r.status} ${r.text.slice(0, 300)}`);
    return r.ms;
  }
  // -q first: no ~/.curlrc; no proxy from the environment: the same request on every machine
  const args = ['-q', '-s', '--noproxy', '*', '-o', '/dev/null', '-w', '%{http_code} %{time_total}'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  const out = await new Promise<string>((resolve, reject) =>
    execFile('curl', [...args, url], (e, stdout) =>
      // not e itself: its message holds the command line, API key included
      e ? reject(new Error(`curl GET ${url} failed (exit ${String(e.code)})`)) : resolve(stdout),
    ),
  );
  const [status, seconds] = out.trim().split(' ').map(Number);
  if (!(status! >= 200 && status! <= 299)) throw new Error(`GET ${url}: ${status}`);
  return seconds! * 1000;
}
