#!/usr/bin/env bash
# Starts a throwaway Redis Cluster of three masters on loopback (ports CLUSTER_BASE_PORT.. +2, default
# 7001-7003), data in a temp dir, and prints its node list (the REDIS_CLUSTER_NODES value) on stdout.
# Idempotent: a healthy cluster on those ports is reused; a broken one is stopped and recreated.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cluster-env.sh
source "$here/cluster-env.sh"

cluster_ok() { [ "$(redis-cli -p "$1" cluster info 2>/dev/null | tr -d '\r' | sed -n 's/^cluster_state://p')" = ok ]; }
all_ok() { for port in "${CLUSTER_PORTS[@]}"; do cluster_ok "$port" || return 1; done; }

if all_ok; then
  echo "$CLUSTER_NODES"
  exit 0
fi
"$here/stop-cluster.sh" >/dev/null

command -v redis-server >/dev/null || { echo "redis-server is not installed (apt-get install redis-server)" >&2; exit 1; }
for port in "${CLUSTER_PORTS[@]}"; do
  mkdir -p "$CLUSTER_DIR/$port"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$CLUSTER_DIR/$port" --daemonize yes \
    --pidfile "$CLUSTER_DIR/$port/redis.pid" --logfile "$CLUSTER_DIR/$port/redis.log" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --maxmemory-policy noeviction --appendonly yes --save ''
done
for port in "${CLUSTER_PORTS[@]}"; do
  for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

# shellcheck disable=SC2046 # one argument per node
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${CLUSTER_PORTS[@]}") --cluster-replicas 0 --cluster-yes >"$CLUSTER_DIR/create.log" 2>&1 ||
  { cat "$CLUSTER_DIR/create.log" >&2; exit 1; }
for _ in $(seq 100); do
  if all_ok; then
    echo "$CLUSTER_NODES"
    exit 0
  fi
  sleep 0.1
done
echo "the cluster on ports ${CLUSTER_PORTS[*]} did not reach cluster_state:ok" >&2
exit 1
