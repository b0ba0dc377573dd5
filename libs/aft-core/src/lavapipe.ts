/**
 * How the webgpu tests (aft-core's, the worker's GPU job, the GPU check bundle's) find Vulkan without anything
 * exported (docs/architecture.md, "Data and backends"): a GPU driver if one is configured, else Mesa's lavapipe from
 * `bash tools/install-lavapipe.sh` under tmp/lavapipe. Where neither is present the tests skip and say why — unless
 * CI=true or AFT_REQUIRE_WEBGPU=1 (.ci/run sets both), where that is a failure. Here, not under test/, because
 * tests of other projects may import a project only through its package (eslint's module boundaries).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { vulkanPrecheck } from './webgpu';

// from the module's URL: a bundler may give a module that and not `import.meta.dirname` (as data/datasets.ts)
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const LAVAPIPE = join(ROOT, 'tmp/lavapipe/root');
export const LVP_ICD = join(LAVAPIPE, 'usr/share/vulkan/icd.d/lvp_icd.json');
export const LVP_LIB = join(LAVAPIPE, 'usr/lib/x86_64-linux-gnu');

/** The children's environment: the lavapipe of tools/install-lavapipe.sh when no Vulkan driver is configured. */
export function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (!env['VK_ICD_FILENAMES'] && !env['VK_DRIVER_FILES'] && existsSync(LVP_ICD)) {
    env['VK_ICD_FILENAMES'] = LVP_ICD;
    env['LD_LIBRARY_PATH'] = env['LD_LIBRARY_PATH'] ? `${LVP_LIB}:${env['LD_LIBRARY_PATH']}` : LVP_LIB;
  }
  return env;
}

/** Why webgpu cannot run with `env` (the optional package, the Vulkan loader or a driver missing), or null. */
export function unavailable(env: NodeJS.ProcessEnv): string | null {
  try {
    createRequire(import.meta.url).resolve('webgpu');
  } catch {
    return 'the optional package "webgpu" is not installed';
  }
  return vulkanPrecheck(env).missing ?? null;
}

/** Whether a missing WebGPU fails the tests instead of skipping them. */
export const required = process.env['CI'] === 'true' || process.env['AFT_REQUIRE_WEBGPU'] === '1';
