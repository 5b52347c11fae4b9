#!/usr/bin/env bash
# npm run test:cluster [-- test files…]: runs tests (default: every integration test and the multi-process
# test) against a throwaway three-master Redis Cluster, then stops it. Fails if any Redis node answered a
# command with CROSSSLOT, or the test output holds a cross-slot error (Redis' or ioredis' own), even when
# the tests themselves passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
here=test/cluster
# shellcheck source=cluster-env.sh
source "$here/cluster-env.sh"

nodes=$("$here/start-cluster.sh") || exit 1
trap '"$here/stop-cluster.sh"' EXIT
for port in "${CLUSTER_PORTS[@]}"; do redis-cli -p "$port" config resetstat >/dev/null; done

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(test/integration/*.test.ts "$here"/*.test.ts)
log=$(mktemp)
echo "Redis Cluster: $nodes"
# Coverage is measured by `npm test`; a subset run here would only trip the coverage gate.
TEST_REDIS_CLUSTER_NODES=$nodes npx tap --disable-coverage "${files[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

crossslot=0
for port in "${CLUSTER_PORTS[@]}"; do
  count=$(redis-cli -p "$port" info errorstats | tr -d '\r' | sed -n 's/^errorstat_CROSSSLOT:count=//p')
  if [ -n "$count" ]; then
    echo "Redis node 127.0.0.1:$port answered $count command(s) with CROSSSLOT" >&2
    crossslot=1
  fi
done
slot_errors='CROSSSLOT Keys|should belong to the same slot'
if grep -qE "$slot_errors" "$log"; then
  echo "cross-slot errors in the test output:" >&2
  grep -nE "$slot_errors" "$log" | head -20 >&2
  crossslot=1
fi
rm -f "$log"
[ "$crossslot" -eq 0 ] || status=1
exit "$status"
