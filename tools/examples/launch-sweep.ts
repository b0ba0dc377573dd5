/**
 * Launches a sweep through the API, the way the dashboard does:
 *
 *   AFT_API_KEY=$(cat .demo/api-key) npx tsx tools/examples/launch-sweep.ts tools/examples/demo-sweep.json
 *
 * The spec is checked by the server (a bad one gets a message naming the field). Prints the sweep id and its runs'
 * URLs as JSON.
 */
import { readFile } from 'node:fs/promises';
import { Transport, TrackerError } from '@aft/tracker';

const file = process.argv[2] ?? 'tools/examples/demo-sweep.json';
const url = process.env['AFT_URL'] ?? 'http://127.0.0.1:3000';
const apiKey = process.env['AFT_API_KEY'];
if (!apiKey) {
  console.error('set AFT_API_KEY (npm run demo writes one to .demo/api-key)');
  process.exit(2);
}
const api = new Transport({ url, apiKey, retryForMs: 30_000 });
try {
  const spec = JSON.parse(await readFile(file, 'utf8')) as unknown;
  const res = await api.call<{ sweepId: string; parents: number; runs: number }>('sweeps.launch', spec);
  const view = await api.call<{ runs: { id: string; name: string }[] }>('sweeps.get', { id: res.sweepId }, 'GET');
  console.log(
    JSON.stringify({ ...res, runs: view.runs.map((r) => ({ name: r.name, url: `${url}/runs/${r.id}` })) }, null, 2),
  );
} catch (e) {
  console.error(`launch-sweep: ${e instanceof TrackerError ? e.message : (e as Error).message}`);
  process.exit(1);
}
