#!/usr/bin/env bash
# The test command: installs what is missing, checks formatting and lints,
# then runs every test of the workspace (unit tests, and integration tests
# that start their own redis-server, backend and gateway).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
