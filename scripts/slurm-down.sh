#!/usr/bin/env bash
# Stops the cluster started by scripts/slurm-up.sh: cancels its jobs, then ends
# slurmd, slurmctld and munged by the pid files in its directory.
# Usage: scripts/slurm-down.sh [DIR] [--purge]   (--purge also deletes DIR)
set -euo pipefail

dir=${SCV_HPC_SLURM_DIR:-/tmp/scv-hpc-slurm}
purge=0
for a in "$@"; do
  case $a in
    --purge) purge=1 ;;
    *) dir=$a ;;
  esac
done
[ -f "$dir/slurm.conf" ] || { echo "slurm-down.sh: no cluster in $dir" >&2; exit 1; }
export SLURM_CONF="$dir/slurm.conf"

scancel --user="$(id -un)" --full 2>/dev/null || true
for _ in $(seq 1 50); do
  [ -z "$(squeue -h -t RUNNING,COMPLETING -o %i 2>/dev/null)" ] && break
  sleep 0.2
done

stop() {
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}
stop "$dir/slurmd-localhost.pid"
stop "$dir/slurmctld.pid"
stop "$dir/munge/munged.pid"
if [ "$purge" = 1 ]; then rm -rf "$dir"; fi
echo "slurm-down.sh: stopped the cluster in $dir" >&2
