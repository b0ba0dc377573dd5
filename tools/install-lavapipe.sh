#!/usr/bin/env bash
# Installs Mesa's lavapipe (software Vulkan) for the WebGPU backend's tests into tmp/lavapipe, without touching the
# system: a private apt configuration (its own sources list, lists and cache under tmp/lavapipe/apt; nothing in
# /etc/apt changes and nothing is installed with dpkg), packages unpacked with `dpkg-deb -x`.
#
# Why backports: Dawn refuses Debian 12's own Mesa 22.3 lavapipe ("shaderUniform*ArrayDynamicIndexing required");
# Mesa 25.0.x from bookworm-backports works. apt works out which packages the system lacks at the versions lavapipe
# needs (a newer libdrm, the Vulkan loader libvulkan1 when absent) and only those are fetched.
#
# Idempotent: a second run only checks. Prints, last, the two variables to export:
#   eval "$(bash tools/install-lavapipe.sh --env)"   # sets VK_ICD_FILENAMES and LD_LIBRARY_PATH
# Exit 1 (with the reason) where it cannot install, e.g. no apt-get or Debian's mirror unreachable.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX="$PWD/tmp/lavapipe"
ROOT="$PREFIX/root"
ICD="$ROOT/usr/share/vulkan/icd.d/lvp_icd.json"
LIBDIR="$ROOT/usr/lib/x86_64-linux-gnu"
SUITE="bookworm-backports"
env_only=false
[ "${1:-}" = "--env" ] && env_only=true

say() { if $env_only; then echo "install-lavapipe: $*" >&2; else echo "install-lavapipe: $*"; fi; }
fail() {
  echo "install-lavapipe: $*" >&2
  exit 1
}

# the paths to export; the ICD json names its library by absolute path (rewritten below), the loader and libdrm are
# found through LD_LIBRARY_PATH
print_env() {
  local ld="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if $env_only; then
    printf 'export VK_ICD_FILENAMES=%q\nexport LD_LIBRARY_PATH=%q\n' "$ICD" "$ld"
  else
    echo "VK_ICD_FILENAMES=$ICD"
    echo "LD_LIBRARY_PATH=$ld"
  fi
}

# lavapipe's driver resolves every library it links (a missing one is reported by ldd as "not found")
check() {
  local so="$LIBDIR/libvulkan_lvp.so"
  [ -f "$ICD" ] && [ -f "$so" ] || return 1
  local missing
  missing=$(LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$so" | grep 'not found' || true)
  if [ -n "$missing" ]; then
    say "lavapipe's driver lacks: $(echo "$missing" | awk '{print $1}' | tr '\n' ' ')"
    return 1
  fi
  # the Vulkan loader: the system's, or ours
  [ -e "$LIBDIR/libvulkan.so.1" ] || ldconfig -p | grep -q 'libvulkan.so.1 ' || return 1
}

if check; then
  say "lavapipe already in $PREFIX"
  print_env
  exit 0
fi

[ "$(uname -m)" = x86_64 ] || fail "only x86_64 is supported (this is $(uname -m))"
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || fail "needs apt-get and dpkg-deb (Debian 12)"
grep -q 'VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null ||
  say "warning: not Debian 12 (bookworm); the backports packages may not fit this system"

APT="$PREFIX/apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$PREFIX/debs"
# bookworm main for the loader (libvulkan1), backports for Mesa 25 and the libdrm it needs
printf 'deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian %s main\n' "$SUITE" \
  >"$APT/sources.list"
opts=(
  -o "Dir::Etc::sourcelist=$APT/sources.list"
  -o "Dir::Etc::sourceparts=/nonexistent"
  -o "Dir::State=$APT"
  -o "Dir::State::Lists=$APT/lists"
  -o "Dir::State::status=/var/lib/dpkg/status"
  -o "Dir::Cache=$APT/cache"
  -o "Debug::NoLocking=1"
  -o "APT::Install-Recommends=false"
  -o "APT::Get::AllowUnauthenticated=false"
)
say "updating the private package lists (Debian bookworm + $SUITE)"
apt-get "${opts[@]}" -qq update || fail "apt-get update failed (is deb.debian.org reachable?)"

# what the system lacks, at the versions Mesa 25 needs: a simulation against the system's dpkg status (nothing is
# installed). Mesa 25 needs libdrm >= 2.4.121 (bookworm has 2.4.114), hence libdrm from backports too; everything
# else comes from bookworm itself where the system lacks it.
backports=(mesa-vulkan-drivers libdrm2 libdrm-amdgpu1 libdrm-common)
sim=$(apt-get "${opts[@]}" -s install "${backports[@]/%//$SUITE}" libvulkan1 2>&1) || true
mapfile -t pkgs < <(awk '/^Inst /{v=$0; sub(/.*\(/, "", v); sub(/ .*/, "", v); print $2 "=" v}' <<<"$sim")
[ ${#pkgs[@]} -gt 0 ] || fail "apt cannot resolve mesa-vulkan-drivers/$SUITE here:
$(grep -E '^( |E:)' <<<"$sim")"
say "fetching ${pkgs[*]}"
chown -R _apt "$PREFIX/debs" 2>/dev/null || true # apt downloads as _apt where it can
rm -rf "$PREFIX/debs"/*.deb
(cd "$PREFIX/debs" && apt-get "${opts[@]}" -qq download "${pkgs[@]}") || fail "apt-get download failed"

rm -rf "$ROOT"
mkdir -p "$ROOT"
for deb in "$PREFIX/debs"/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
[ -f "$ICD" ] || fail "no $ICD in the unpacked packages"
# the json names /usr/lib/...; point it at the private copy
sed -i "s#\"library_path\": \"[^\"]*libvulkan_lvp.so\"#\"library_path\": \"$LIBDIR/libvulkan_lvp.so\"#" "$ICD"
check || fail "lavapipe unpacked in $PREFIX but its driver does not load (see above)"
say "lavapipe installed in $PREFIX"
print_env
