#!/usr/bin/env bash
# Builds both services and runs them together with their embedded defaults:
# the bundled catalog, and the in-process cache (set GATEWAY_REDIS_URL to
# use Redis). Every GATEWAY_* and BACKEND_* variable of the README applies.
# Ctrl-C (or SIGTERM) stops both gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p backend -p gateway

target/release/backend &
backend=$!
target/release/gateway &
gateway=$!

stop() {
    trap - INT TERM
    kill -TERM "$gateway" "$backend" 2>/dev/null || true
    wait "$gateway" "$backend" 2>/dev/null || true
}
trap stop INT TERM

# When either service exits (or a signal arrives), stop the other one too.
wait -n "$backend" "$gateway" || true
stop
