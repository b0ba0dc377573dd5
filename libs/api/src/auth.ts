/**
 * Accounts: email and password sign-up and sign-in through better-auth, sessions in Postgres (auth_session),
 * passwords hashed with scrypt (memory-hard; node:crypto). better-auth's four tables are mapped onto the Prisma
 * schema's snake_case ones, so Prisma migrations own them. A new user gets a team of their own (they own it),
 * the way a W&B user gets a personal entity; sign-ups and sign-ins go to the audit log.
 *
 * Hostile input: sign-in attempts are throttled per account and per client address in Postgres (shared by every web
 * server; 429 with Retry-After), the address being the one the socket's server stamped (client-ip.ts), never a
 * header the client wrote. New passwords must pass password-policy.ts. Sign-up answers alike whether or not the
 * email is taken (no session either way: the form signs in next), so it does not tell who has an account.
 */
import { betterAuth } from 'better-auth';
import { APIError, createAuthMiddleware, isAPIError } from 'better-auth/api';
import {
  clearSignInAttempts,
  countSignInAttempt,
  createTeamWithOwner,
  findUserIdByEmail,
  refundSignInAttempt,
  withTransaction,
  type Db,
  type ThrottleRule,
} from '@aft/db';
import { audit } from './audit';
import { addressBucket, clientIp } from './client-ip';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, passwordProblem } from './password-policy';

export interface AuthOptions {
  db: Db;
  /** Signs session cookies; at least 32 characters. */
  secret: string;
  /** The dashboard's public origin (request origins are checked against it), or the hosts it may be reached at. */
  baseURL: string | { allowedHosts: string[]; protocol: 'http' | 'https' };
  /** Other origins allowed to call the auth endpoints. */
  trustedOrigins?: string[];
  /** Sign-in attempts allowed per account and per client address (defaults: SIGN_IN_LIMITS). */
  signInLimits?: Partial<typeof SIGN_IN_LIMITS>;
}

/**
 * Failed sign-ins allowed per window. Per account, whatever addresses they come from (a botnet guessing one
 * password); per address, whatever accounts they name (one machine spraying a password over many accounts) — an
 * office behind one NAT address shares that budget, hence the higher number.
 */
export const SIGN_IN_LIMITS = {
  perAccount: { max: 5, windowS: 15 * 60 } as ThrottleRule,
  perAddress: { max: 30, windowS: 15 * 60 } as ThrottleRule,
};

/** Where the auth handler hands better-auth the verified client address (sessions' ip_address, its own limiter). */
const AUTH_IP_HEADER = 'x-aft-auth-ip';

/** The email a sign-in names, as accounts are keyed (better-auth lower-cases emails). */
function accountKey(email: unknown): string | null {
  return typeof email === 'string' && email.trim() ? `email:${email.trim().toLowerCase().slice(0, 320)}` : null;
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
  const limits = { ...SIGN_IN_LIMITS, ...opts.signInLimits };
  const auth = betterAuth({
    database: db.pool,
    secret: opts.secret,
    baseURL: opts.baseURL,
    trustedOrigins: opts.trustedOrigins ?? [],
    telemetry: { enabled: false },
    emailAndPassword: {
      enabled: true,
      minPasswordLength: PASSWORD_MIN_LENGTH,
      maxPasswordLength: PASSWORD_MAX_LENGTH,
      // without auto sign-in, better-auth answers a sign-up for a taken email exactly like one for a new email
      autoSignIn: false,
    },
    advanced: { ipAddress: { ipAddressHeaders: [AUTH_IP_HEADER] } },
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
      before: createAuthMiddleware(async (ctx) => {
        const newPassword =
          ctx.path === '/sign-up/email'
            ? { field: 'password', value: ctx.body?.password }
            : ctx.path === '/change-password' || ctx.path === '/reset-password'
              ? { field: 'newPassword', value: ctx.body?.newPassword }
              : null;
        const problem = newPassword && passwordProblem(newPassword.value, newPassword.field);
        if (problem) throw new APIError('BAD_REQUEST', { message: problem, code: 'PASSWORD_TOO_WEAK' });
        if (ctx.path !== '/sign-in/email') return;
        // counted before the password is checked, so parallel guesses cannot all get in under the limit
        const ip = ctx.headers ? clientIp(ctx.headers) : null;
        const account = accountKey(ctx.body?.email);
        const refused = await countSignInAttempt(db, [
          ...(ip ? [{ key: `ip:${addressBucket(ip)}`, rule: limits.perAddress }] : []),
          ...(account ? [{ key: account, rule: limits.perAccount }] : []),
        ]);
        if (refused) {
          const whose = refused.key.startsWith('ip:') ? 'from your address' : 'for this account';
          throw new APIError(
            'TOO_MANY_REQUESTS',
            {
              message: `too many failed sign-in attempts ${whose}: try again in ${refused.retryAfterS} s`,
              code: 'TOO_MANY_SIGN_IN_ATTEMPTS',
            },
            { 'retry-after': String(refused.retryAfterS) },
          );
        }
      }),
      after: createAuthMiddleware(async (ctx) => {
        if (ctx.path !== '/sign-in/email') return;
        const ip = ctx.headers ? clientIp(ctx.headers) : null;
        const account = accountKey(ctx.body?.email);
        if (!isAPIError(ctx.context.returned)) {
          // a success gives its attempt back; the account's owner proved the password, so its count starts over
          if (ip) await refundSignInAttempt(db, `ip:${addressBucket(ip)}`);
          if (account) await clearSignInAttempts(db, account);
          return;
        }
        // failed sign-ins go to the audit log too, under the account they tried (team owners see them)
        const email = account?.slice('email:'.length) ?? null;
        const userId = email ? await findUserIdByEmail(db, email) : null;
        await audit(db, { userId, action: 'user.sign_in_failed', target: email, ip }).catch(() => undefined);
      }),
    },
    databaseHooks: {
      user: {
        create: {
          after: async (user) => {
            const name = user.name?.trim() || user.email.split('@')[0] || 'My';
            await withTransaction(db.pool, async (c) => {
              const teamId = await createTeamWithOwner(c, {
                slug: personalSlug(user.email),
                name: `${name}'s team`,
                ownerId: user.id,
              });
              await audit(db, { teamId, userId: user.id, action: 'user.sign_up', target: user.email }, c);
            });
          },
        },
      },
      session: {
        create: {
          after: async (session) => {
            await audit(db, { userId: session.userId, action: 'user.sign_in', ip: session.ipAddress || null });
          },
        },
      },
    },
  });
  return {
    ...auth,
    /** better-auth's HTTP handler, told the verified client address (and nothing a client wrote in its place). */
    handler: (req: Request) => {
      const headers = new Headers(req.headers);
      const ip = clientIp(req.headers);
      if (ip) headers.set(AUTH_IP_HEADER, ip);
      else headers.delete(AUTH_IP_HEADER);
      return auth.handler(new Request(req, { headers }));
    },
  };
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
