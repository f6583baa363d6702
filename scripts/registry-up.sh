#!/usr/bin/env bash
# Starts Debian's docker-registry on 127.0.0.1:PORT (default 5055) with its storage in
# STATE_DIR; prints nothing on success. Stop it with scripts/registry-down.sh STATE_DIR.
set -euo pipefail
state=${1:?usage: registry-up.sh STATE_DIR [PORT]}
port=${2:-5055}
mkdir -p "$state/storage"
if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
  exit 0
fi
cat > "$state/config.yml" <<CONF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $state/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
CONF
docker-registry serve "$state/config.yml" >"$state/registry.log" 2>&1 &
echo $! > "$state/pid"
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then exit 0; fi
  kill -0 "$(cat "$state/pid")" 2>/dev/null || { cat "$state/registry.log" >&2; echo "registry-up: docker-registry exited (is port $port free?)" >&2; exit 1; }
  sleep 0.1
done
echo "registry-up: no answer on 127.0.0.1:$port after 10s; log: $state/registry.log" >&2
exit 1
