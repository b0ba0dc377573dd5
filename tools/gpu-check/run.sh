#!/usr/bin/env bash
# AFT Lab's GPU check, run on the GPU machine from the bundle that tools/gpu-check/build.sh made (README.md beside
# it): no Node, no network, no install. Unpacks the bundle's Node, Dawn and Vulkan loader into a temporary folder,
# finds NVIDIA's Vulkan driver, then runs the stages, each under a hard time limit inside an overall budget:
#   probe            adapter probe                          → probe.json
#   matmul           matMul rate at 2048, 4096, 8192        → matmul.json
#   bench-train-*    npm run bench:train, small and medium  → bench-train-small.json, bench-train-medium.json
#   vft-medium       `aft vft --preset medium --steps 300`  → vft-medium.json (loss curve, tokens/s, wall time)
# Limits: unpack 60 s, probe 40, matmul 70, bench small 70, medium 100, the VFT what is left of the overall budget.
# then summary.json. A stage that fails or runs out of time is recorded and the next one still runs; each stage's
# stderr is in <stage>.log.
#
#   bash run.sh OUTDIR [--quick]
#
# --quick (or GPU_CHECK_QUICK=1): sizes small enough for a software adapter (lavapipe), to prove the bundle works;
# its numbers mean nothing. Overrides: GPU_CHECK_BUDGET_S (overall, default 460 s), GPU_CHECK_STAGES (e.g.
# probe,matmul), GPU_CHECK_MATMUL_SIZES, GPU_CHECK_BENCH_PRESETS, GPU_CHECK_VFT_PRESET, GPU_CHECK_VFT_STEPS.
# Exit 0 when every stage passed, 1 when one failed, 2 on a usage error.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=""
QUICK=${GPU_CHECK_QUICK:-0}
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    -*) echo "run.sh: unknown option $a (usage: bash run.sh OUTDIR [--quick])" >&2; exit 2 ;;
    *) OUT=$a ;;
  esac
done
[ -n "$OUT" ] || { echo "usage: bash run.sh OUTDIR [--quick]" >&2; exit 2; }
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 2
rm -f "$OUT/stages.tsv"
export GPU_CHECK_QUICK=$QUICK GPU_CHECK_STARTED_AT
GPU_CHECK_STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)

now_ms() { if [ -n "${EPOCHREALTIME:-}" ]; then echo $((${EPOCHREALTIME/[.,]/} / 1000)); else echo $(($(date +%s) * 1000)); fi; }
T0=$(now_ms)
BUDGET_S=${GPU_CHECK_BUDGET_S:-460}
DEADLINE=$((T0 + BUDGET_S * 1000))
log() { echo "gpu-check: $*" >&2; }

if [ "$QUICK" = 1 ]; then
  MATMUL_SIZES=${GPU_CHECK_MATMUL_SIZES:-128,256}
  BENCH_LIST=${GPU_CHECK_BENCH_PRESETS:-tiny}
  VFT_PRESET=${GPU_CHECK_VFT_PRESET:-tiny}
  VFT_STEPS=${GPU_CHECK_VFT_STEPS:-4}
  MATMUL_SECONDS=0.2
  BENCH_ARGS=(--steps 1 --rounds 1 --matmul-size 128)
  # the final evaluation generates for the whole test split: a few short answers are enough to see it work
  VFT_SETS=(--set data.test=4 --set eval.batchSize=4 --set eval.maxNewTokens=8)
else
  MATMUL_SIZES=${GPU_CHECK_MATMUL_SIZES:-2048,4096,8192}
  BENCH_LIST=${GPU_CHECK_BENCH_PRESETS:-small,medium}
  VFT_PRESET=${GPU_CHECK_VFT_PRESET:-medium}
  VFT_STEPS=${GPU_CHECK_VFT_STEPS:-300}
  MATMUL_SECONDS=2
  BENCH_ARGS=()
  VFT_SETS=()
fi
STAGES=${GPU_CHECK_STAGES:-probe,matmul,bench,vft}
wants() { [[ ",$STAGES," == *",$1,"* ]]; }

# stage NAME BUDGET_S JSON CMD...: runs CMD under `timeout` (the smaller of its budget and what is left of the overall
# one) and appends a row to stages.tsv; never fails the script. JSON: the file CMD writes itself, or `stdout` when
# its stdout is the JSON (kept as NAME.stdout for summary.mjs), or empty; everything else goes to NAME.log.
stage() {
  local name=$1 budget=$2 file=$3
  shift 3
  local left=$(((DEADLINE - $(now_ms)) / 1000))
  local limit=$((budget < left ? budget : left))
  if [ "$limit" -lt 5 ]; then
    log "$name skipped: the overall budget of ${BUDGET_S} s is spent"
    printf '%s\tskipped\t0\t0\t\n' "$name" >>"$OUT/stages.tsv"
    return
  fi
  log "$name (at most ${limit} s)"
  local stdout="$OUT/$name.log"
  if [ "$file" = stdout ]; then
    file="$name.stdout"
    stdout="$OUT/$file"
  fi
  local t rc secs
  t=$(now_ms)
  : >"$OUT/$name.log"
  if command -v timeout >/dev/null; then
    timeout -k 10 "$limit" "$@" >>"$stdout" 2>>"$OUT/$name.log" </dev/null
  else
    "$@" >>"$stdout" 2>>"$OUT/$name.log" </dev/null
  fi
  rc=$?
  secs=$(awk -v ms=$(($(now_ms) - t)) 'BEGIN { printf "%.1f", ms / 1000 }')
  log "$name: exit $rc after ${secs} s"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$secs" "$limit" "$file" >>"$OUT/stages.tsv"
}
command -v timeout >/dev/null || log "no timeout(1) here: the stages run without a time limit"

# --- unpack: Node, Dawn and the JavaScript into a private folder, removed at exit (checkpoints go there too)
RT=$(mktemp -d "${TMPDIR:-/tmp}/aft-gpu-check.XXXXXX") || exit 1
trap 'rm -rf "$RT"' EXIT
# shellcheck disable=SC2016 # expanded by the inner bash
stage unpack 60 "" bash -c 'set -euo pipefail
  cd "$1"
  if command -v sha256sum >/dev/null; then sha256sum -c SHA256SUMS; else echo "no sha256sum: not verified"; fi
  gzip -dc node.gz >"$2/node"
  gzip -dc dawn.node.gz >"$2/dawn.node"
  tar -xzf app.tar.gz -C "$2"
  chmod +x "$2/node"
  cp manifest.json "$3/bundle-manifest.json"
  "$2/node" --version' _ "$HERE" "$RT" "$OUT"

# --- what dawn.node needs of the host (glibc 2.34, libstdc++ of GCC 12), said up front; the probe fails without it
{
  glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null || echo "glibc unknown")
  echo "host: $glibc (dawn.node needs 2.34 or later)"
  cxx=$( (ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null) | awk '/libstdc\+\+\.so\.6 .*x86-64/ { print $NF; exit }')
  if [ -z "$cxx" ]; then
    echo "host: libstdc++.so.6 not in the linker cache"
  elif grep -qa GLIBCXX_3.4.30 "$cxx"; then
    echo "host: $cxx has GLIBCXX_3.4.30, as dawn.node needs"
  else
    echo "host: $cxx lacks GLIBCXX_3.4.30 (GCC 12's libstdc++), which dawn.node needs: WebGPU cannot load here"
  fi
} >"$OUT/preflight.log" 2>&1

# --- Vulkan: the bundle's loader, and NVIDIA's driver from the standard ICD folders, else an ICD file written here
export LD_LIBRARY_PATH="$RT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# shellcheck source=nvidia-icd.sh
source "$HERE/nvidia-icd.sh"
nvidia_icd "$RT/icd" >>"$OUT/preflight.log" 2>&1
log "Vulkan driver: ${GPU_CHECK_NVIDIA_ICD:-no NVIDIA driver found, see preflight.log}"
export GPU_CHECK_NVIDIA_ICD
export AFT_BACKEND=webgpu
NODE=("$RT/node")

wants probe && stage probe 40 probe.json "${NODE[@]}" "$RT/js/probe.mjs" --out "$OUT/probe.json"
wants matmul && stage matmul 70 matmul.json \
  "${NODE[@]}" "$RT/js/matmul.mjs" --sizes "$MATMUL_SIZES" --seconds "$MATMUL_SECONDS" --out "$OUT/matmul.json"
if wants bench; then
  IFS=, read -r -a presets <<<"$BENCH_LIST"
  for p in "${presets[@]}"; do
    budget=70
    [ "$p" = medium ] && budget=100
    [ "$QUICK" = 1 ] && budget=150 # a software adapter takes most of a minute even for one tiny step
    stage "bench-train-$p" "$budget" stdout "${NODE[@]}" "$RT/js/bench-train.mjs" --backend webgpu --presets "$p" \
      ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"}
  done
fi
# the last stage: whatever the others left of the overall budget
wants vft && stage "vft-$VFT_PRESET" "$BUDGET_S" stdout "${NODE[@]}" "$RT/js/aft.mjs" vft --preset "$VFT_PRESET" \
  --steps "$VFT_STEPS" --out "$RT/vft" ${VFT_SETS[@]+"${VFT_SETS[@]}"}

export GPU_CHECK_ELAPSED_S=$((($(now_ms) - T0) / 1000))
if ! "${NODE[@]}" "$RT/js/summary.mjs" "$OUT" >"$OUT/summary.log" 2>&1; then
  # no Node to write it (the unpack failed, or Node does not start here): the stage table as JSON, by hand
  log "the summary writer failed (summary.log); writing the stage table only"
  {
    printf '{\n  "check": "aft-gpu-check",\n  "ok": false,\n  "summaryWriter": "failed, see summary.log",\n  "stages": ['
    sep=""
    while IFS=$'\t' read -r name rc secs limit _; do
      ok=false
      [ "$rc" = 0 ] && ok=true
      [ "$rc" = skipped ] && rc=null
      printf '%s\n    {"name": "%s", "ok": %s, "exitCode": %s, "seconds": %s, "limitSeconds": %s}' "$sep" "$name" \
        "$ok" "$rc" "${secs:-0}" "${limit:-0}"
      sep=,
    done <"$OUT/stages.tsv"
    printf '\n  ]\n}\n'
  } >"$OUT/summary.json"
fi
cat "$OUT/summary.log" >&2 2>/dev/null
log "done in $GPU_CHECK_ELAPSED_S s; results in $OUT"
grep -q '"ok": true' <(head -c 200 "$OUT/summary.json")
