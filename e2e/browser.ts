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

/**
 * A tRPC procedure of the e2e app called with the seeded API key, as a script would: a mutation by POST, a query by
 * GET with `?input=`; throws with the server's message on a non-2xx answer.
 */
export async function callApi<T>(path: string, input: unknown, method: 'GET' | 'POST' = 'POST'): Promise<T> {
  const query = method === 'GET' ? `?input=${encodeURIComponent(JSON.stringify(input))}` : '';
  const res = await fetch(`${inject('baseUrl')}/api/trpc/${path}${query}`, {
    method,
    headers: { 'content-type': 'application/json', 'x-api-key': inject('apiKey') },
    body: method === 'POST' ? JSON.stringify(input) : undefined,
  });
  const json = (await res.json()) as { result?: { data: T }; error?: { message: string } };
  if (!res.ok) throw new Error(`${path}: ${json.error?.message}`);
  return json.result!.data;
}
