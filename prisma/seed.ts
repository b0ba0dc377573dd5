/**
 * Seeds the local team the dashboard acts for until sign-in lands, and an API key of that team for scripts.
 * The key is shown once and kept in .demo/api-key (git-ignored) so `npm run demo` can print it again; if that
 * key was revoked or the database is new, a fresh one is made. Idempotent.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createDb, generateApiKey, hashApiKey } from '@aft/db';

const url = process.env['DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/aft';
const slug = process.env['AFT_LOCAL_TEAM'] || 'local';
const keyFile = resolve(process.env['AFT_KEY_FILE'] ?? '.demo/api-key');

const db = createDb({ connectionString: url, max: 2 });
try {
  const team = await db.prisma.team.upsert({
    where: { slug },
    create: { slug, name: 'Local team' },
    update: {},
  });
  let key = existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : '';
  const stored = key
    ? await db.prisma.apiKey.findUnique({ where: { hash: hashApiKey(key) }, select: { teamId: true, revokedAt: true } })
    : null;
  if (!stored || stored.revokedAt || stored.teamId !== team.id) {
    const k = generateApiKey();
    await db.prisma.apiKey.create({
      data: { teamId: team.id, name: 'demo', prefix: k.prefix, hash: k.hash, scopes: ['log', 'launch', 'read'] },
    });
    key = k.key;
    mkdirSync(dirname(keyFile), { recursive: true });
    writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
  }
  console.log(JSON.stringify({ team: slug, apiKey: key, keyFile }));
} finally {
  await db.close();
}
