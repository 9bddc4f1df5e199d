#!/usr/bin/env bash
# Instructions per call of each breaker, and of a gRPC-shaped call through
# each listener layer, counted by callgrind: repeatable where wall time on a
# shared machine is not. Each subject runs twice, with a small and a large
# number of calls; the difference over the calls between is the cost of
# one call, set-up excluded. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p bench --example instructions --example layer_instructions >/dev/null 2>&1
exe=target/release/examples/instructions
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$exe" "$@" 2>&1 |
        sed -n 's/.*I *refs: *//p' | tr -d ,
}
printf '%-18s %-7s %s\n' subject state instructions/call
for state in closed open; do
    for subject in baseline ours tower-resilience failsafe; do
        [ "$state" = open ] && [ "$subject" = baseline ] && continue
        extra=()
        [ "$state" = open ] && extra=(open)
        small=$(count "$subject" 10000 "${extra[@]}")
        large=$(count "$subject" 110000 "${extra[@]}")
        printf '%-18s %-7s %s\n' "$subject" "$state" "$(( (large - small) / 100000 ))"
    done
done

echo
exe=target/release/examples/layer_instructions
printf '%-18s %s\n' layer instructions/call
for subject in baseline metrics deadline unknown-method; do
    small=$(count "$subject" 2000)
    large=$(count "$subject" 22000)
    printf '%-18s %s\n' "$subject" "$(( (large - small) / 20000 ))"
done
