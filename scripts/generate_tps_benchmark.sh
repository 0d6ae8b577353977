#!/usr/bin/env bash
# The TPS benchmark: a real network of validator processes on loopback, AuditLog deployed through
# JSON-RPC, load from a separate load-generator process; writes ci_artifacts/tps_benchmark_report.json
# and .svg. Runs on the project's pinned Node whatever the host has. --help lists the options.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x node_modules/.bin/node ]; then
  echo "node_modules is missing: run 'npm ci' first" >&2
  exit 1
fi
export PATH="$PWD/node_modules/.bin:$PATH"
exec node packages/node/test/perf/tps/benchmark.ts "$@"
