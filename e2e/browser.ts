import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { inject } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { signIn } from '../tools/lib/app-server';

export const ARTIFACTS = resolve(import.meta.dirname, 'artifacts');
const CHROMIUM = '/usr/bin/chromium';

/** Debian's Chromium, headless, with the flags this network needs. Never downloads a browser. */
export async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
  });
}

/** A page of a browser context signed in as the seeded user (owner of the team "local"). */
export async function signedInPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  await signIn(context, { baseUrl: inject('baseUrl'), email: inject('email'), password: inject('password') });
  return context.newPage();
}
