#!/usr/bin/env bash
# The contract's own checks:
#   1. `buf lint` (buf.yaml: STANDARD, COMMENTS, UNARY_RPC; no exceptions);
#   2. `buf breaking` against the last released state of proto/, the newest
#      image in proto-releases/ (FILE rules: wire and generated code);
#   3. that check catching a wire-breaking and a source-breaking change in a
#      copy of proto/, so that it is known to fail when it must;
#   4. gen/go, the committed Go package, being what buf.gen.yaml generates
#      from proto/ now, and building.
set -euo pipefail
cd "$(dirname "$0")/.."

tools_bin="$(scripts/install-go-tools.sh)"
export PATH="$tools_bin:$PATH"
released="$(ls proto-releases/*.binpb | sort -V | tail -n 1)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

echo "proto-check: buf lint"
buf lint

echo "proto-check: buf breaking against $released"
buf breaking --against "$released"

# A change that must be refused, made in a copy: `sed` expression, and what
# buf must say about it.
must_break() {
    local what="$1" expression="$2" expected="$3"
    rm -rf "$scratch/copy" && mkdir -p "$scratch/copy"
    cp -r proto buf.yaml "$scratch/copy/"
    sed -i "$expression" "$scratch/copy/proto/catalog/v1/catalog.proto"
    if (cd "$scratch/copy" && buf breaking --against "$OLDPWD/$released") >"$scratch/out" 2>&1; then
        echo "proto-check: buf breaking let $what through" >&2
        exit 1
    fi
    if ! grep -q "$expected" "$scratch/out"; then
        echo "proto-check: buf breaking refused $what, but not for the expected reason:" >&2
        cat "$scratch/out" >&2
        exit 1
    fi
    echo "proto-check: buf breaking refuses $what: $(head -n 1 "$scratch/out")"
}
must_break "a renumbered field (wire)" 's/Money price = 5;/Money price = 15;/' 'field "5" with name "price" on message "Product" was deleted'
must_break "a renamed field (source)" 's/string title = 2;/string name = 2;/' 'changed name from "title" to "name"'

echo "proto-check: gen/go is what buf.gen.yaml generates"
buf generate --output "$scratch/generated"
if ! diff -r --exclude=go.mod --exclude=go.sum gen/go "$scratch/generated/gen/go"; then
    echo "proto-check: gen/go is out of date: run 'PATH=$tools_bin:\$PATH buf generate' and commit it" >&2
    exit 1
fi
(cd gen/go && go build ./... && go vet ./...)
echo "proto-check: the contract checks out"
