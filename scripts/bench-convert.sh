#!/usr/bin/env bash
# Conversion benchmark (make bench): the OpenCV example image (scripts/build-opencv-image.sh)
# pushed to a loopback registry, then, in one run:
#   - scv-hpc pull with the default compression and each other algorithm, into a fresh cache:
#     wall time, peak RSS, SIF size;
#   - mksquashfs -comp gzip (level 9, what apptainer pull uses) on the image's unpacked tree;
#   - gzip -dc of the image's largest layer (the floor: one gzip stream cannot be split).
#   - a second model on the same base layers (one more small layer), pulled after the first:
#     time and bytes fetched with the layer cache, and with --no-layer-cache (every layer again).
# Prints a Markdown table. Needs root (debootstrap) the first time the image is built.
# Environment: BENCH_PORT (default 5077), BENCH_ALGOS (default "default zstd:3 xz lz4 lzo gzip:9").
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
port="${BENCH_PORT:-5077}"
algos="${BENCH_ALGOS:-default zstd:3 lz4 lzo gzip:9 xz}"
work="$(mktemp -d "${TMPDIR:-/tmp}/scv-hpc-bench.XXXXXX")"
trap '"$repo/scripts/registry-down.sh" "$work/registry" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

cd "$repo"
CGO_ENABLED=0 go build -o "$work/scv-hpc" ./cmd/scv-hpc
layout="$(scripts/build-opencv-image.sh | tail -n1)"
rootfs="$(ls -d "$(dirname "$layout")"/rootfs-* | grep -v '\.done$' | head -n1)"
"$repo/scripts/registry-up.sh" "$work/registry" "$port"
ref="127.0.0.1:$port/bench/opencv-faces:latest"
go run ./scripts/benchpush "$layout" "$ref"
ref2="127.0.0.1:$port/bench/opencv-faces-2:latest"
go run ./scripts/benchpush "$layout" "$ref2" "a second model on the same base layers"

# measure LABEL CMD...: one row, wall seconds and peak RSS from GNU time.
measure() {
  local label="$1"; shift
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>&1 || { cat "$work/out" >&2; echo "bench: $label failed" >&2; exit 1; }
  read -r secs kb < "$work/time"
  echo "$secs $kb"
}
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

echo "| step | wall s | peak RSS MB | size MB |"
echo "|---|---|---|---|"
layer="$(ls -S "$layout"/blobs/sha256/* | head -n1)"
read -r secs kb < <(measure "gzip -dc" sh -c "gzip -dc < '$layer' > /dev/null")
echo "| \`gzip -dc\` of the largest layer ($(mb "$(stat -c %s "$layer")") MB), the floor | $secs | $(mb $((kb*1000))) | |"
read -r secs kb < <(measure "mksquashfs gzip-9" mksquashfs "$rootfs" "$work/tree.sqfs" -noappend -comp gzip -no-xattrs -no-progress -quiet)
echo "| \`mksquashfs -comp gzip\` (level 9) on the unpacked tree | $secs | $(mb $((kb*1000))) | $(mb "$(stat -c %s "$work/tree.sqfs")") |"
rm -f "$work/tree.sqfs"
for a in $algos; do
  cache="$work/cache-${a//:/-}"
  args=()
  [ "$a" = default ] || args=(--compression "$a")
  read -r secs kb < <(measure "pull $a" "$work/scv-hpc" pull "$ref" --cache "$cache" --tmpdir "$work" "${args[@]}")
  sif="$(ls "$cache"/sif/sha256/*.sif)"
  echo "| \`scv-hpc pull\` --compression $a | $secs | $(mb $((kb*1000))) | $(mb "$(stat -c %s "$sif")") |"
  rm -rf "$cache"
done

# The second model, after the first, with and without the layer cache.
echo
echo "| second model on the same base, after the first | wall s | layer bytes fetched | layer bytes from the cache |"
echo "|---|---|---|---|"
for mode in "--no-layer-cache" ""; do
  cache="$work/cache-second"
  rm -rf "$cache"
  "$work/scv-hpc" pull "$ref" --cache "$cache" --tmpdir "$work" $mode >/dev/null 2>&1
  read -r secs kb < <(measure "second pull" "$work/scv-hpc" pull "$ref2" --cache "$cache" --tmpdir "$work" --log-format json --log-level info $mode)
  fetched="$(grep -o '"fetched_bytes":[0-9]*' "$work/out" | tail -n1 | cut -d: -f2)"
  cached="$(grep -o '"cached_bytes":[0-9]*' "$work/out" | tail -n1 | cut -d: -f2)"
  label="with the layer cache (default)"
  [ -n "$mode" ] && label="$mode (as before)"
  echo "| $label | $secs | $(mb "${fetched:-0}") MB | $(mb "${cached:-0}") MB |"
done
rm -rf "$work/cache-second"
