#!/usr/bin/env bash
# Starts a private single-node Slurm cluster on this machine, without systemd:
# munged (private key and socket), slurmctld and slurmd, all as root, with their
# state, logs and pid files in one directory, listening on free ports on
# 127.0.0.1. Prints the line that points Slurm's clients at it:
#
#   eval "$(scripts/slurm-up.sh)"      # sets SLURM_CONF
#   sinfo; scv-hpc submit ...; scripts/slurm-down.sh
#
# Usage: scripts/slurm-up.sh [DIR]   (default: $SCV_HPC_SLURM_DIR or /tmp/scv-hpc-slurm)
# Needs: munge slurmctld slurmd slurm-client (scripts/deps.sh installs them).
set -euo pipefail

dir=${1:-${SCV_HPC_SLURM_DIR:-/tmp/scv-hpc-slurm}}
case $dir in *"|"*) echo "slurm-up.sh: DIR must not contain |" >&2; exit 1 ;; esac
export PATH="$PATH:/usr/sbin:/sbin"
[ "$(id -u)" -eq 0 ] || { echo "slurm-up.sh: run as root (slurmd and munged need it)" >&2; exit 1; }
for p in munged slurmctld slurmd sinfo; do
  command -v "$p" >/dev/null || { echo "slurm-up.sh: $p is missing: run scripts/deps.sh" >&2; exit 1; }
done
if [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
  echo "slurm-up.sh: a cluster is already running in $dir (scripts/slurm-down.sh $dir stops it)" >&2
  echo "export SLURM_CONF=$(printf '%q' "$dir/slurm.conf")"
  exit 0
fi

mkdir -p "$dir"/{munge,state,spool,log}
chmod 0755 "$dir" "$dir/munge"
if [ ! -f "$dir/munge/munge.key" ]; then
  head -c 1024 /dev/urandom > "$dir/munge/munge.key"
fi
chmod 0400 "$dir/munge/munge.key"

# A free TCP port on 127.0.0.1: nothing accepts a connection on it.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
}
ctld_port=$(free_port)
slurmd_port=$(free_port)
while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done
cpus=$(nproc)
mem=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)

# The configuration the tests use too (scripts/slurm.conf.in); 1001 is Slurm's default
# MaxArraySize.
sed -e "s|@DIR@|$dir|g" -e "s|@CLUSTER@|scvlocal|g" -e "s|@CTLD_PORT@|$ctld_port|g" \
  -e "s|@SLURMD_PORT@|$slurmd_port|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEM_MB@|$mem|g" \
  -e "s|@MAX_ARRAY_SIZE@|1001|g" "$(dirname "$0")/slurm.conf.in" > "$dir/slurm.conf"
# Two fake GPUs (scripts/gres.conf, which the tests use too).
cp "$(dirname "$0")/gres.conf" "$dir/gres.conf"

export SLURM_CONF="$dir/slurm.conf"
munged --force --socket "$dir/munge/munge.socket" --key-file "$dir/munge/munge.key" \
  --pid-file "$dir/munge/munged.pid" --log-file "$dir/log/munged.log" --seed-file "$dir/munge/munged.seed"
slurmctld -i -f "$SLURM_CONF"
slurmd -N localhost -f "$SLURM_CONF"

for _ in $(seq 1 150); do
  if [ "$(sinfo -h -o %T 2>/dev/null)" = idle ]; then
    echo "slurm-up.sh: node idle; logs in $dir/log; stop with: scripts/slurm-down.sh $(printf '%q' "$dir")" >&2
    echo "export SLURM_CONF=$(printf '%q' "$SLURM_CONF")"
    exit 0
  fi
  sleep 0.2
done
echo "slurm-up.sh: the node did not become idle; see $dir/log/slurmctld.log and slurmd.log:" >&2
tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
exit 1
