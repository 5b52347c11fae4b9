#!/usr/bin/env bash
# Stops the throwaway cluster start-cluster.sh started (by the pids it recorded) and deletes its data.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cluster-env.sh
source "$here/cluster-env.sh"

for port in "${CLUSTER_PORTS[@]}"; do
  pidfile="$CLUSTER_DIR/$port/redis.pid"
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  # Redis deletes its pid file on a clean exit (kill -0 would still see an unreaped zombie).
  for _ in $(seq 50); do [ -f "$pidfile" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
done
rm -rf "$CLUSTER_DIR"
