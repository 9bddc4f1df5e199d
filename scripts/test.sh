#!/usr/bin/env bash
# The test command: installs what is missing, checks formatting and lints,
# runs every test of the workspace (unit tests, and integration tests that
# start their own redis-server, backend and gateway), then checks the
# contract (scripts/proto-check.sh: buf lint, buf breaking, gen/go), runs
# the clients of other languages and the peer tools against the binaries
# and a real Redis (scripts/clients-check.py), and checks the Docker Compose
# stack without Docker (scripts/compose-check.py: the first run builds a
# collector and Jaeger from their Go modules, about ten minutes on two
# cores; later runs reuse them).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
scripts/proto-check.sh
scripts/clients-check.py --binaries target/debug
# The binaries cargo test built, started as docker-compose.yml starts them.
scripts/compose-check.py --binaries target/debug
