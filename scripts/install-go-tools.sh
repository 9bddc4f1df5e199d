#!/usr/bin/env bash
# Builds the Go tools that the proto and client checks use, at pinned
# versions, into target/tools/bin (each only once: a stamp records what
# was built with which Go):
#   protoc-gen-go, protoc-gen-go-grpc  generate gen/go (buf.gen.yaml)
#   grpcurl                            the newest release, reflection v1
#   grpc-health-probe                  grpc.health.v1 from the outside
# and, only when named (`scripts/install-go-tools.sh ghz`), the benchmarks'
#   ghz                                gRPC load (bench/proxy_overhead.py)
# With names as arguments, builds those alone. Prints the directory to put
# on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="$PWD/target/tools/bin"
mkdir -p "$bin"
go_version="$(go env GOVERSION)"

# name, package@version, and the -ldflags its release builds use (grpcurl
# prints "dev build" unless told its version).
tools=(
    "protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12"
    "protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2"
    "grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4 -X=main.version=v1.9.4"
    "grpc-health-probe github.com/grpc-ecosystem/grpc-health-probe@v0.4.63 -X=main.versionTag=v0.4.63"
)
on_request=(
    "ghz github.com/bojand/ghz/cmd/ghz@v0.120.0 -X=main.version=0.120.0"
)
if [ $# -gt 0 ]; then
    wanted=()
    for tool in "${tools[@]}" "${on_request[@]}"; do
        for name in "$@"; do
            [ "${tool%% *}" = "$name" ] && wanted+=("$tool")
        done
    done
    if [ ${#wanted[@]} -ne $# ]; then
        echo "install-go-tools.sh: unknown tool among: $*" >&2
        exit 2
    fi
    tools=("${wanted[@]}")
fi
pids=()
for tool in "${tools[@]}"; do
    read -r name package ldflags <<<"$tool"
    stamp="$package $ldflags $go_version"
    if [ -x "$bin/$name" ] && [ "$(cat "$bin/$name.stamp" 2>/dev/null)" = "$stamp" ]; then
        continue
    fi
    echo "building $package" >&2
    (GOBIN="$bin" go install -ldflags="$ldflags" "$package" >&2 && echo "$stamp" >"$bin/$name.stamp") &
    pids+=($!)
done
for pid in "${pids[@]}"; do
    wait "$pid"
done
echo "$bin"
