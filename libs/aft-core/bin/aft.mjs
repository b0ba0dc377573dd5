#!/usr/bin/env node
// The `aft` command: runs the TypeScript CLI through tsx (a dependency of the workspace), so `npx aft …` works
// from the repository root without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
