# Shared by the cluster scripts: which ports and which data directory the throwaway cluster uses.
CLUSTER_BASE_PORT=${CLUSTER_BASE_PORT:-7001}
CLUSTER_PORTS=("$CLUSTER_BASE_PORT" "$((CLUSTER_BASE_PORT + 1))" "$((CLUSTER_BASE_PORT + 2))")
CLUSTER_DIR=${CLUSTER_DIR:-${TMPDIR:-/tmp}/plugboard-cluster-$CLUSTER_BASE_PORT}
CLUSTER_NODES=$(printf '127.0.0.1:%s,' "${CLUSTER_PORTS[@]}")
CLUSTER_NODES=${CLUSTER_NODES%,}
