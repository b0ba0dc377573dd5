/**
 * Seeds the demo: a user who owns the team "local", and an API key of that team for scripts and the worker. The
 * password and the key are shown once and kept in .demo/ (git-ignored) so `npm run demo` can print them again;
 * if the key was revoked or the database is new, fresh ones are made. Idempotent.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { hashPassword } from 'better-auth/crypto';
import { createDb, generateApiKey, hashApiKey } from '@aft/db';

const url = process.env['DATABASE_URL'] ?? 'postgresql://postgres@127.0.0.1:5432/aft';
const slug = process.env['AFT_SEED_TEAM'] || 'local';
const email = process.env['AFT_SEED_EMAIL'] || 'demo@aft-lab.local';
const keyFile = resolve(process.env['AFT_KEY_FILE'] ?? '.demo/api-key');
const passwordFile = resolve(process.env['AFT_PASSWORD_FILE'] ?? '.demo/password');

function keep(file: string, value: string) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
}

const db = createDb({ connectionString: url, max: 2 });
try {
  const team = await db.prisma.team.upsert({ where: { slug }, create: { slug, name: 'Demo team' }, update: {} });

  // the demo user, signing in with email and password (better-auth's credential account, scrypt hash)
  let password = existsSync(passwordFile) ? readFileSync(passwordFile, 'utf8').trim() : '';
  let user = await db.prisma.user.findUnique({ where: { email } });
  if (!user) user = await db.prisma.user.create({ data: { email, name: 'Demo' } });
  const account = await db.prisma.account.findFirst({ where: { userId: user.id, providerId: 'credential' } });
  if (!account || !password) {
    password ||= randomBytes(12).toString('base64url');
    const hash = await hashPassword(password);
    if (account) await db.prisma.account.update({ where: { id: account.id }, data: { password: hash } });
    else {
      await db.prisma.account.create({
        data: {
          id: randomBytes(16).toString('hex'),
          userId: user.id,
          accountId: user.id,
          providerId: 'credential',
          password: hash,
        },
      });
    }
    keep(passwordFile, password);
  }
  await db.prisma.membership.upsert({
    where: { teamId_userId: { teamId: team.id, userId: user.id } },
    create: { teamId: team.id, userId: user.id, role: 'owner' },
    update: { role: 'owner' },
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
    keep(keyFile, key);
  }
  console.log(JSON.stringify({ team: slug, email, password, apiKey: key, keyFile }));
} finally {
  await db.close();
}
