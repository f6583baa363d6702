#!/usr/bin/env bash
# Installs the Debian packages that scv-hpc's tests and demo use, when they are missing.
# Runs 'apt-get update' at most once. Needs root (or sudo).
set -euo pipefail

# chromium: the report's browser test (headless, no network).
want=(curl squashfs-tools squashfs-tools-ng squashfuse siftool docker-registry munge slurmctld slurmd slurm-client debootstrap python3 dpkg-dev python3-numpy chromium)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "scripts/deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
