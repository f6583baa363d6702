#!/usr/bin/env bash
# Stops the registry started by scripts/registry-up.sh STATE_DIR.
set -euo pipefail
state=${1:?usage: registry-down.sh STATE_DIR}
[ -f "$state/pid" ] || exit 0
pid=$(cat "$state/pid")
kill "$pid" 2>/dev/null || true
for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
rm -f "$state/pid"
