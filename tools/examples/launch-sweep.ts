/**
 * Launches a sweep through the API, the way the dashboard does:
 *
 *   AFT_API_KEY=$(cat .demo/api-key) npx tsx tools/examples/launch-sweep.ts tools/examples/demo-sweep.json
 *
 * The spec is checked by the server (a bad one gets a message naming the field). Prints the sweep id and its runs'
 * URLs as JSON.
 */
import { readFile } from 'node:fs/promises';
import { createTRPCClient, httpLink } from '@trpc/client';
import type { AppRouter } from '@aft/api';

const file = process.argv[2] ?? 'tools/examples/demo-sweep.json';
const url = process.env['AFT_URL'] ?? 'http://127.0.0.1:3000';
const apiKey = process.env['AFT_API_KEY'];
if (!apiKey) {
  console.error('set AFT_API_KEY (npm run demo writes one to .demo/api-key)');
  process.exit(2);
}
// a tRPC client typed by the router (the SDK's Transport calls only the procedures a trainer needs)
const api = createTRPCClient<AppRouter>({
  links: [httpLink({ url: `${url.replace(/\/+$/, '')}/api/trpc`, headers: { 'x-api-key': apiKey } })],
});
try {
  // the file's JSON as it is: the server checks it against the sweep spec
  const res = await api.sweeps.launch.mutate(JSON.parse(await readFile(file, 'utf8')));
  const view = await api.sweeps.get.query({ id: res.sweepId });
  console.log(
    JSON.stringify({ ...res, runs: view.runs.map((r) => ({ name: r.name, url: `${url}/runs/${r.id}` })) }, null, 2),
  );
} catch (e) {
  console.error(`launch-sweep: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
