#!/usr/bin/env bash
# Replay throughput with and without metrics/dashboard, alternating, same log.
set -euo pipefail
LOG=$1; BIN=target/release/bindery
plain() { BINDERY_LOG=info $BIN replay "$LOG" ${EXTRA:-} 2>&1 | grep -o 'replayed.*'; }
dash() {
  BINDERY_LOG=info $BIN replay "$LOG" ${EXTRA:-} --dashboard --per-policy-metrics --listen 127.0.0.1:0 > /tmp/dash-bench.log 2>&1 &
  pid=$!
  until grep -q "replay finished" /tmp/dash-bench.log; do sleep 0.2; done
  kill -TERM $pid; wait $pid
  grep -o 'replayed.*' /tmp/dash-bench.log
}
for i in 1 2; do echo "plain: $(plain)"; echo "dashboard: $(dash)"; done
