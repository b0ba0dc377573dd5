#!/usr/bin/env bash
# Makes NVIDIA's Vulkan driver findable for WebGPU (Dawn) — used by the GPU check's run.sh and by the GPU worker's
# image (docker/Dockerfile.worker-gpu). The Vulkan loader finds drivers through ICD files (JSON naming the driver's
# library). NVIDIA's driver package installs one (nvidia_icd.json) naming libGLX_nvidia.so.0, and a container often
# gets the driver's libraries (with NVIDIA_DRIVER_CAPABILITIES including graphics) with or without that file.
#
# The library it names matters: headless, libGLX_nvidia.so.0 hands the loader no vkCreateInstance ("Could not get
# 'vkCreateInstance' via 'vk_icdGetInstanceProcAddr'", then "Found no drivers"): measured on an H200 container with
# driver 580.159.04, the toolkit's own ICD file and no X display. libEGL_nvidia.so.0 carries the same Vulkan driver
# without needing a display (the same ICD entry points), and worked there. So when the driver's EGL library is found,
# this writes an ICD file naming it and points VK_ICD_FILENAMES at it; a WebGPU worker never draws to a window.
# An ICD file naming some other NVIDIA library (a driver that ships a Vulkan-only one) is used as it is.
#
#   source nvidia-icd.sh; nvidia_icd DIR      sets GPU_CHECK_NVIDIA_ICD (the ICD file used; empty when none),
#                                             exports VK_ICD_FILENAMES when it wrote one into DIR
#   nvidia-icd.sh DIR CMD [ARGS...]           the same, then exec CMD (a container entrypoint)
#
# Left alone: a VK_ICD_FILENAMES / VK_DRIVER_FILES already set. Searched: NVIDIA_ICD_DIRS (the loader's folders by
# default) and NVIDIA_LIB_DIRS (the linker's cache and the usual driver folders), overridable for tests.

# nvidia_lib NAME: the path of the driver's library NAME, from the linker's cache, then the folders drivers and
# containers use; empty when it is nowhere
nvidia_lib() {
  local name=$1 lib="" ldconfig d
  if [ -z "${NVIDIA_LIB_DIRS:-}" ]; then
    for ldconfig in ldconfig /sbin/ldconfig /usr/sbin/ldconfig; do
      if command -v "$ldconfig" >/dev/null 2>&1; then
        # the path after "=> ", whole (it may hold spaces)
        lib=$("$ldconfig" -p 2>/dev/null | awk -v n="$name" '$1 == n && /x86-64/ { sub(/^[^>]*=> /, ""); print; exit }')
        break
      fi
    done
  fi
  if [ -z "$lib" ]; then
    local lib_dirs=${NVIDIA_LIB_DIRS:-${LD_LIBRARY_PATH:-}:/usr/lib/x86_64-linux-gnu:/usr/lib64:/usr/lib:/lib/x86_64-linux-gnu:/lib64:/usr/local/nvidia/lib64:/usr/local/nvidia/lib:/usr/lib/x86_64-linux-gnu/nvidia/current}
    IFS=: read -r -a dirs <<<"$lib_dirs"
    for d in "${dirs[@]}"; do
      if [ -n "$d" ] && [ -e "$d/$name" ]; then
        # absolute: the loader reads a relative library_path against the ICD file's own folder
        lib=$(cd "$d" && pwd -P)/$name
        break
      fi
    done
  fi
  echo "$lib"
}

# write_icd DIR LIB: an ICD file in DIR naming LIB, used from now on; fails (changing nothing) when DIR is not writable
write_icd() {
  local dir=$1 lib=$2
  mkdir -p "$dir" 2>/dev/null || return 1
  # api_version is the interface the file promises; the device reports its own Vulkan version to the loader
  printf '{\n  "file_format_version": "1.0.0",\n  "ICD": {\n    "library_path": "%s",\n    "api_version": "1.3.0"\n  }\n}\n' \
    "$lib" 2>/dev/null >"$dir/nvidia_icd.json" || return 1
  export VK_ICD_FILENAMES="$dir/nvidia_icd.json"
  # the driver's own libraries (libnvidia-glcore, …) sit beside it; outside the linker's paths they need this
  export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$(dirname "$lib")"
  GPU_CHECK_NVIDIA_ICD="$dir/nvidia_icd.json"
}

nvidia_icd() {
  local dir=$1 f found="" named=""
  GPU_CHECK_NVIDIA_ICD=""
  if [ -n "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ]; then
    GPU_CHECK_NVIDIA_ICD="set by the caller: ${VK_DRIVER_FILES:-$VK_ICD_FILENAMES}"
    echo "nvidia-icd: VK_ICD_FILENAMES/VK_DRIVER_FILES already set; left alone"
    return 0
  fi
  local icd_dirs=${NVIDIA_ICD_DIRS:-${XDG_CONFIG_DIRS:-/etc/xdg}/vulkan/icd.d:/etc/vulkan/icd.d:/usr/local/share/vulkan/icd.d:/usr/share/vulkan/icd.d}
  local d
  IFS=: read -r -a dirs <<<"$icd_dirs"
  for d in "${dirs[@]}"; do
    for f in "$d"/*.json; do
      [ -f "$f" ] || continue
      if [[ "$(basename "$f")" == nvidia* ]] || grep -q 'nvidia' "$f" 2>/dev/null; then
        found=$f
        # the file on one line (JSON may put the value on the next); unreadable: no name, as if it named GLX
        named=$(tr -d '\n\r' <"$f" 2>/dev/null | sed -n 's/.*"library_path"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p') ||
          named=""
        break 2
      fi
    done
  done
  if [ -n "$found" ] && [ -n "$named" ] && [[ "$(basename "$named")" != libGLX_nvidia* ]]; then
    GPU_CHECK_NVIDIA_ICD=$found
    echo "nvidia-icd: the loader finds NVIDIA's driver through $found ($named)"
    return 0
  fi
  local egl
  egl=$(nvidia_lib libEGL_nvidia.so.0)
  if [ -n "$egl" ] && write_icd "$dir" "$egl"; then
    echo "nvidia-icd: wrote $GPU_CHECK_NVIDIA_ICD naming $egl, NVIDIA's Vulkan driver without a display${found:+ (in place of $found, whose libGLX_nvidia.so.0 needs an X display)}"
    return 0
  fi
  [ -z "$egl" ] || echo "nvidia-icd: cannot write an ICD file into $dir for $egl"
  if [ -n "$found" ]; then
    GPU_CHECK_NVIDIA_ICD=$found
    local why=" (no libEGL_nvidia.so.0 to use headless)"
    [ -z "$egl" ] || why=""
    echo "nvidia-icd: the loader finds NVIDIA's driver through $found$why"
    return 0
  fi
  local glx
  glx=$(nvidia_lib libGLX_nvidia.so.0)
  if [ -z "$glx" ]; then
    echo "nvidia-icd: no NVIDIA Vulkan driver: no nvidia ICD file in $icd_dirs and no libEGL_nvidia.so.0 or" \
      "libGLX_nvidia.so.0 (in a container: NVIDIA_DRIVER_CAPABILITIES must include graphics)"
    return 0
  fi
  if write_icd "$dir" "$glx"; then
    echo "nvidia-icd: no ICD file for NVIDIA's driver; wrote $GPU_CHECK_NVIDIA_ICD naming $glx"
  else
    echo "nvidia-icd: no ICD file for NVIDIA's driver, and none can be written into $dir for $glx"
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  [ $# -ge 2 ] || { echo "usage: nvidia-icd.sh DIR CMD [ARGS...]" >&2; exit 2; }
  icd_dir=$1
  shift
  nvidia_icd "$icd_dir" >&2
  exec "$@"
fi
