/**
 * The GPU check's JavaScript (tools/gpu-check/README.md): the adapter probe, the matMul rate, the trainer bench
 * (tools/bench/train.ts), the `aft` CLI and the summary writer, bundled by esbuild into one folder of ES modules that
 * share their chunks (TensorFlow.js once, not five times). Everything is inside but Node's own modules and Dawn's
 * native `dawn.node`, which the bundled `webgpu` package loads from beside the folder (or $AFT_DAWN_NODE).
 *
 *   npx tsx tools/gpu-check/bundle.ts OUTDIR      → OUTDIR/{probe,matmul,bench-train,aft,summary}.mjs + chunks
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { build, type Plugin } from 'esbuild';

const ROOT = resolve(import.meta.dirname, '../..');

export const ENTRIES: Record<string, string> = {
  probe: 'tools/gpu-check/probe.ts',
  matmul: 'tools/gpu-check/matmul.ts',
  'bench-train': 'tools/bench/train.ts',
  aft: 'libs/aft-core/src/cli/main.ts',
  summary: 'tools/gpu-check/summary.ts',
};

// webgpu/index.js finds dawn.node under its own package folder (dist/<platform>-<arch>/); bundled, "its folder" is the
// bundle's, so the path is rewritten to the runtime layout of run.sh: RT/js/*.mjs and RT/dawn.node.
const DAWN_PATH = /const dawnNodePath = join\(__dirname, 'dist', `\$\{process\.platform\}-\$\{arch\}`, 'dawn\.node'\);/;
const dawnNode: Plugin = {
  name: 'dawn-node-path',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]webgpu[\\/]index\.js$/ }, (args) => {
      const src = readFileSync(args.path, 'utf8');
      if (!DAWN_PATH.test(src)) {
        throw new Error(`${args.path}: the dawn.node path line changed (a new "webgpu" version?); update bundle.ts`);
      }
      const contents = src.replace(
        DAWN_PATH,
        "const dawnNodePath = process.env.AFT_DAWN_NODE || join(__dirname, '..', 'dawn.node');",
      );
      return { contents, loader: 'js' };
    });
  },
};

export async function bundle(outdir: string): Promise<string[]> {
  const res = await build({
    absWorkingDir: ROOT,
    entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([k, v]) => [k, resolve(ROOT, v)])),
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunk-[hash]',
    // unminified: a stack trace from the GPU machine's logs reads as the source does (+0.3 MB gzipped)
    minify: false,
    legalComments: 'eof',
    metafile: true,
    logLevel: 'warning',
    // CommonJS inside (tfjs's node builds) calls require() for Node's modules; an ES module has none of its own
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    // the `tensorflow` backend (tfjs-node) and the optional wasm kernels' assembler are never used here
    external: ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'wabt'],
    plugins: [dawnNode],
  });
  return Object.keys(res.metafile.outputs);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: tsx tools/gpu-check/bundle.ts OUTDIR');
    process.exit(2);
  }
  const files = await bundle(resolve(out));
  console.log(files.filter((f) => f.endsWith('.mjs')).length, 'files');
}
