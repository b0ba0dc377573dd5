/**
 * Accounts: email and password sign-up and sign-in through better-auth, sessions in Postgres (auth_session),
 * passwords hashed with scrypt (memory-hard; node:crypto). better-auth's four tables are mapped onto the Prisma
 * schema's snake_case ones, so Prisma migrations own them. A new user gets a team of their own (they own it),
 * the way a W&B user gets a personal entity; sign-ups and sign-ins go to the audit log.
 */
import { betterAuth } from 'better-auth';
import { createAuthMiddleware, isAPIError } from 'better-auth/api';
import type { Db } from '@aft/db';
import { audit } from './audit';

export interface AuthOptions {
  db: Db;
  /** Signs session cookies; at least 32 characters. */
  secret: string;
  /** The dashboard's public origin (request origins are checked against it), or the hosts it may be reached at. */
  baseURL: string | { allowedHosts: string[]; protocol: 'http' | 'https' };
  /** Other origins allowed to call the auth endpoints. */
  trustedOrigins?: string[];
}

const timestamps = { createdAt: 'created_at', updatedAt: 'updated_at' } as const;

/** A team slug from an email's local part, made unique with a short random suffix. */
function personalSlug(email: string): string {
  const base = (email.split('@')[0] ?? 'team')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return `${base || 'team'}-${Math.random().toString(36).slice(2, 7)}`;
}

export function createAuth(opts: AuthOptions) {
  const { db } = opts;
  return betterAuth({
    database: db.pool,
    secret: opts.secret,
    baseURL: opts.baseURL,
    trustedOrigins: opts.trustedOrigins ?? [],
    telemetry: { enabled: false },
    emailAndPassword: { enabled: true, minPasswordLength: 10, maxPasswordLength: 256, autoSignIn: true },
    user: { modelName: 'app_user', fields: { emailVerified: 'email_verified', ...timestamps } },
    session: {
      modelName: 'auth_session',
      fields: {
        userId: 'user_id',
        expiresAt: 'expires_at',
        ipAddress: 'ip_address',
        userAgent: 'user_agent',
        ...timestamps,
      },
      expiresIn: 60 * 60 * 24 * 30,
      updateAge: 60 * 60 * 24,
    },
    account: {
      modelName: 'auth_account',
      fields: {
        userId: 'user_id',
        accountId: 'account_id',
        providerId: 'provider_id',
        accessToken: 'access_token',
        refreshToken: 'refresh_token',
        idToken: 'id_token',
        accessTokenExpiresAt: 'access_token_expires_at',
        refreshTokenExpiresAt: 'refresh_token_expires_at',
        ...timestamps,
      },
    },
    verification: { modelName: 'auth_verification', fields: { expiresAt: 'expires_at', ...timestamps } },
    hooks: {
      // failed sign-ins go to the audit log too, under the account they tried (team owners see them)
      after: createAuthMiddleware(async (ctx) => {
        if (ctx.path !== '/sign-in/email' || !isAPIError(ctx.context.returned)) return;
        const email = typeof ctx.body?.email === 'string' ? ctx.body.email.slice(0, 320) : null;
        const user = email ? await db.prisma.user.findUnique({ where: { email }, select: { id: true } }) : null;
        const ip = ctx.headers?.get('x-forwarded-for')?.split(',')[0]?.trim() ?? null;
        await audit(db, { userId: user?.id ?? null, action: 'user.sign_in_failed', target: email, ip }).catch(
          () => undefined,
        );
      }),
    },
    databaseHooks: {
      user: {
        create: {
          after: async (user) => {
            const name = user.name?.trim() || user.email.split('@')[0] || 'My';
            const team = await db.prisma.team.create({
              data: {
                slug: personalSlug(user.email),
                name: `${name}'s team`,
                memberships: { create: { userId: user.id, role: 'owner' } },
              },
            });
            await audit(db, { teamId: team.id, userId: user.id, action: 'user.sign_up', target: user.email });
          },
        },
      },
      session: {
        create: {
          after: async (session) => {
            await audit(db, { userId: session.userId, action: 'user.sign_in', ip: session.ipAddress ?? null });
          },
        },
      },
    },
  });
}

export type Auth = ReturnType<typeof createAuth>;

/** The signed-in user of a request (from its session cookie), or null. */
export async function sessionUser(
  auth: Auth,
  headers: Headers,
): Promise<{ id: string; email: string; name: string } | null> {
  const s = await auth.api.getSession({ headers }).catch(() => null);
  return s ? { id: s.user.id, email: s.user.email, name: s.user.name } : null;
}
