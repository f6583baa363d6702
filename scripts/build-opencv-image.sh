#!/usr/bin/env bash
# Builds the OpenCV face-detection example model image without Docker:
#   1. a minimal Debian root filesystem (debootstrap --variant=minbase) with python3,
#      python3-opencv and opencv-data, stripped of apt caches, docs, man pages and locales;
#   2. the Scivision-shaped model package (examples/models/opencv-faces) and the predict
#      adapter (templates/adapter/scv_adapter.py) added under /opt/scv;
#   3. packed into an OCI image layout by 'scv-hpc image build'.
#
# Usage: scripts/build-opencv-image.sh [OUT]
#   OUT        OCI image layout directory to write (tag 'latest'). Without OUT nothing is
#              copied: the cached layout is used in place, <cache>/layout links to it.
# Prints the layout directory on stdout (the last line).
# Environment:
#   SCV_DEBIAN_MIRROR  Debian mirror for debootstrap (default: the first Debian mirror
#                      this machine's apt sources use)
#   SCV_HPC            scv-hpc binary to pack with (default: built from this repository)
#   SCV_OPENCV_CACHE   where built root filesystems and images are kept
#                      (default <repo>/.cache/opencv-image)
#
# The root filesystem is cached under a key made from the suite, the package list and the
# mirror; the image under a key that adds the model package, the adapter and this script.
# A re-run with unchanged inputs copies the cached image and takes seconds.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${SCV_OPENCV_CACHE:-$repo/.cache/opencv-image}"
out="${1:-}"
suite=bookworm
packages=python3,python3-opencv,opencv-data
model_src="$repo/examples/models/opencv-faces"
adapter="$repo/templates/adapter/scv_adapter.py"
predict_cmd="python3 /opt/scv/scv_adapter.py --model-dir /opt/scv/model"

die() { echo "build-opencv-image: $*" >&2; exit 1; }
log() { echo "build-opencv-image: $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "debootstrap needs root: run as root (or with sudo)"
command -v debootstrap >/dev/null || die "debootstrap is not installed: run scripts/deps.sh"
[ -f "$adapter" ] || die "adapter not found: $adapter"

# debian_mirror prints the first Debian archive URI of this machine's apt sources
# (deb822 .sources files and one-line .list files), skipping the security archive.
debian_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '/^URIs:/ {for (i = 2; i <= NF; i++) print $i}' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f"
  done
}
mirror="${SCV_DEBIAN_MIRROR:-$(debian_mirror | grep -v -- '-security' | grep -m1 '/debian/\?$' || true)}"
[ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list(.d): set SCV_DEBIAN_MIRROR=http://…/debian"

# Content keys: what goes into the root filesystem, then what goes into the image.
rootfs_key="$(printf '%s\n' "$suite" "$packages" "$mirror" minbase-v1 | sha256sum | cut -c1-16)"
image_key="$( {
  echo "$rootfs_key"
  sha256sum "$0" "$adapter"
  (cd "$model_src" && find opencv_faces .scivision -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum)
} | sha256sum | cut -c1-16)"
rootfs="$cache/rootfs-$rootfs_key"
image="$cache/image-$image_key"
mkdir -p "$cache"
# One build at a time (parallel test runs share the cache).
exec 9>"$cache/.lock"
flock 9

if [ ! -f "$rootfs.done" ]; then
  log "debootstrap $suite ($packages) from $mirror into $rootfs (about 1-2 minutes)"
  rm -rf "$rootfs" "$rootfs.tmp"
  debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { tail -n 20 "$cache/debootstrap.log" >&2; die "debootstrap failed (full log: $cache/debootstrap.log)"; }
  # What a model image never needs at run time.
  rm -rf "$rootfs.tmp"/var/cache/apt/* "$rootfs.tmp"/var/lib/apt/lists/* \
    "$rootfs.tmp"/usr/share/doc/* "$rootfs.tmp"/usr/share/man/* "$rootfs.tmp"/usr/share/info/* \
    "$rootfs.tmp"/usr/share/locale/* "$rootfs.tmp"/usr/share/lintian "$rootfs.tmp"/var/log/* \
    "$rootfs.tmp"/var/cache/debconf/*-old "$rootfs.tmp"/debootstrap
  # Device nodes are the runtime's business (it mounts /dev); an image has none.
  find "$rootfs.tmp/dev" -mindepth 1 -delete
  [ -f "$rootfs.tmp/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml" ] \
    || die "opencv-data's Haar cascade is missing from the root filesystem"
  mv "$rootfs.tmp" "$rootfs"
  touch "$rootfs.done"
else
  log "root filesystem cached: $rootfs"
fi

if [ ! -f "$image.done" ]; then
  bin="${SCV_HPC:-}"
  if [ -z "$bin" ]; then
    bin="$cache/scv-hpc"
    (cd "$repo" && CGO_ENABLED=0 go build -o "$bin" ./cmd/scv-hpc) || die "cannot build scv-hpc"
  fi
  stage="$(mktemp -d "$cache/stage.XXXXXX")"
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage/model"
  cp -r "$model_src/opencv_faces" "$model_src/.scivision" "$stage/model/"
  find "$stage/model" -name __pycache__ -type d -prune -exec rm -rf {} +
  cp "$adapter" "$stage/scv_adapter.py"
  rm -rf "$image" "$image.tmp"
  log "packing the image with $bin image build"
  "$bin" image build --from-dir "$rootfs" \
    --add "$stage/scv_adapter.py:/opt/scv/scv_adapter.py" \
    --add "$stage/model:/opt/scv/model" \
    --entrypoint '["python3","/opt/scv/scv_adapter.py","--model-dir","/opt/scv/model"]' \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --env PYTHONDONTWRITEBYTECODE=1 \
    --label "org.scivision.predict=$predict_cmd" \
    --label "org.opencontainers.image.title=opencv-faces" \
    --label "org.opencontainers.image.description=Scivision-style face detector (OpenCV Haar cascade)" \
    --oci-layout "$image.tmp:latest" \
    || die "scv-hpc image build failed"
  mv "$image.tmp" "$image"
  touch "$image.done"
else
  log "image cached: $image"
fi

# Builds of older inputs are not needed any more.
for old in "$cache"/rootfs-* "$cache"/image-*; do
  case "$old" in "$rootfs"|"$rootfs.done"|"$image"|"$image.done") continue ;; esac
  rm -rf "$old"
done

if [ -z "$out" ]; then
  ln -sfn "$(basename "$image")" "$cache/layout"
  out="$image"
elif [ "$out" != "$image" ]; then
  rm -rf "$out"
  mkdir -p "$(dirname "$out")"
  cp -a "$image" "$out"
fi
log "OCI layout: $out (tag latest)"
echo "$out"
