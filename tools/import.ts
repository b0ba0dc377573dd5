/**
 * Imports an export archive (.aft.tar.gz from the dashboard's Export button or the SDK's exportArchive) into a
 * team, as a new project:
 *   npm run import -- gsm8k.aft.tar.gz --team local [--project "gsm8k (copy)"]
 * Reads DATABASE_URL. Prints the new project's id and the counts, checked against the archive's manifest.
 * An archive is outside input: its sizes and fields are checked and reading it is bounded (libs/db importArchive's
 * limits); `--max-bytes` raises the cap on its uncompressed size (default 32 GiB) for a very large project.
 */
import { createReadStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { createGunzip } from 'node:zlib';
import { createDb, importArchive } from '@aft/db';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { team: { type: 'string' }, project: { type: 'string' }, 'max-bytes': { type: 'string' } },
});
const file = positionals[0];
if (!file || !values.team) {
  console.error(
    'usage: npm run import -- <archive.aft.tar.gz> --team <team slug> [--project <name>] [--max-bytes <n>]',
  );
  process.exit(2);
}
const maxBytes = values['max-bytes'] === undefined ? undefined : Number(values['max-bytes']);
if (maxBytes !== undefined && !(Number.isSafeInteger(maxBytes) && maxBytes > 0)) {
  console.error('--max-bytes is a positive whole number of bytes');
  process.exit(2);
}
const db = createDb({
  connectionString: process.env['DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/aft',
  max: 4,
});
try {
  const team = await db.prisma.team.findUnique({ where: { slug: values.team } });
  if (!team) throw new Error(`no team with slug "${values.team}"`);
  const src = file.endsWith('.tar') ? createReadStream(file) : createReadStream(file).pipe(createGunzip());
  const r = await importArchive(db.pool, src, {
    teamId: team.id,
    projectName: values.project,
    limits: maxBytes ? { maxTotalBytes: maxBytes } : undefined,
  });
  const mismatch =
    r.manifest && Object.entries(r.manifest).filter(([k, v]) => r.counts[k as keyof typeof r.counts] !== v);
  console.log(JSON.stringify({ projectId: r.projectId, counts: r.counts, manifest: r.manifest }));
  if (mismatch && mismatch.length) {
    console.error(`imported counts differ from the manifest: ${mismatch.map(([k]) => k).join(', ')}`);
    process.exitCode = 1;
  }
} catch (e) {
  console.error(`import failed: ${(e as Error).message}`);
  process.exitCode = 1;
} finally {
  await db.close();
}
