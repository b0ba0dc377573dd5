/** End-to-end fixture: the real app on a fresh database (tools/lib/app-server.ts); tests get it by inject(). */
import type { TestProject } from 'vitest/node';
import { startApp, type AppServer } from '../tools/lib/app-server';

declare module 'vitest' {
  export interface ProvidedContext {
    baseUrl: string;
    apiKey: string;
    databaseUrl: string;
    email: string;
    password: string;
  }
}

let app: AppServer | null = null;

export async function setup(project: TestProject) {
  app = await startApp('aft_e2e', { worker: true });
  project.provide('baseUrl', app.baseUrl);
  project.provide('apiKey', app.apiKey);
  project.provide('databaseUrl', app.databaseUrl);
  project.provide('email', app.email);
  project.provide('password', app.password);
}

export async function teardown() {
  await app?.stop();
}
