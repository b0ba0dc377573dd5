import { TRPCError } from '@trpc/server';

/** Loads one thing by id: a missing (or malformed) id gives null, so the page can say so; anything else throws. */
export async function found<T>(load: Promise<T>): Promise<T | null> {
  try {
    return await load;
  } catch (e) {
    if (e instanceof TRPCError && (e.code === 'NOT_FOUND' || e.code === 'BAD_REQUEST')) return null;
    throw e;
  }
}
