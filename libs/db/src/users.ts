/**
 * People who sign in (`app_user`). better-auth writes these rows itself (libs/api/src/auth.ts maps its tables);
 * these are the reads the API makes of them, and the fixture that writes one without a password.
 */
import type { Db } from './client';

/** A user's id, email and name, or null when there is no such user. */
export function findUser(db: Pick<Db, 'prisma'>, userId: string) {
  return db.prisma.user.findUnique({ where: { id: userId }, select: { id: true, email: true, name: true } });
}

/** The id of the user with this email (as stored: better-auth lower-cases emails), or null. */
export async function findUserIdByEmail(db: Pick<Db, 'prisma'>, email: string): Promise<string | null> {
  const user = await db.prisma.user.findUnique({ where: { email }, select: { id: true } });
  return user?.id ?? null;
}

/** A user with no password (so no sign-in): fixtures, which then act as them directly. */
export function createUser(db: Pick<Db, 'prisma'>, user: { email: string; name: string }) {
  return db.prisma.user.create({ data: user });
}
