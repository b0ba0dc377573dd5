import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { inject } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../tools/lib/browser';
import { signIn } from '../tools/lib/app-server';

export const ARTIFACTS = resolve(import.meta.dirname, 'artifacts');

/** Debian's Chromium (tools/lib/browser.ts); screenshots go to e2e/artifacts. */
export async function launch(): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true });
  return launchChromium();
}

/** A page of a browser context signed in as the seeded user (owner of the team "local"). */
export async function signedInPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  await signIn(context, { baseUrl: inject('baseUrl'), email: inject('email'), password: inject('password') });
  return context.newPage();
}
