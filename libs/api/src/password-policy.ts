/**
 * What a new password must be: 10 to 256 characters (better-auth checks the length) and not one that attackers try
 * first — the ~49,000 most common leaked passwords that zxcvbn-ts ships (@zxcvbn-ts/language-common), compared
 * without regard to case.
 */
import { dictionary } from '@zxcvbn-ts/language-common';

export const PASSWORD_MIN_LENGTH = 10;
export const PASSWORD_MAX_LENGTH = 256;

let common: Set<string> | null = null;

/** Why `password` may not be used (a message naming `field`), or null when it may. */
export function passwordProblem(password: unknown, field = 'password'): string | null {
  if (typeof password !== 'string') return null; // better-auth's own validation names a missing password
  common ??= new Set(dictionary['passwords-common'].map((p) => p.toLowerCase()));
  const lower = password.toLowerCase();
  if (common.has(lower)) {
    const n = common.size.toLocaleString('en');
    return `${field} is one of the most common passwords (it is on a list of ${n} leaked ones): choose another`;
  }
  if (password.length >= PASSWORD_MIN_LENGTH && new Set(lower).size <= 2) {
    return `${field} repeats one or two characters: choose one that is harder to guess`;
  }
  return null;
}
