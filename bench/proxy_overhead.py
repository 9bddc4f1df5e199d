#!/usr/bin/env python3
"""What a call costs through the gateway: the backend called directly (the
baseline), through nginx's `grpc_pass` (a mature proxy that only forwards),
and through the gateway with its in-process cache and with Redis, all
measured in one run by the same load tool (ghz) against the same backend.

Every request asks for a different product, so the gateway calls the
backend every time (no fresh window, nothing to coalesce) and writes each
answer to its cache: the path of a healthy backend, which is what a proxy's
overhead is about. Cases take turns, round after round, and each figure is
the median of its rounds. The load tool runs on one core and everything
else on the other, so the tool does not take CPU from what it measures.

    bench/proxy_overhead.py [--requests 20000] [--concurrency 16] [--rate 1000] [--rounds 3]

Needs nginx (Debian: nginx-light) and redis-server; builds ghz from its Go
module and the services in release mode. BENCHMARKS.md has the results.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from checklib import CheckFailed, Stack, free_port, run, wait_until  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "target" / "proxy-bench"
LOAD_CPU, SERVICE_CPU = "0", "1"
# Calls of the warm-up of each case, before any is measured.
WARM_UP = 2_000


def log(message):
    print(f"proxy-bench: {message}", flush=True)


def ghz_binary():
    """ghz, built once by scripts/install-go-tools.sh."""
    tools_bin = run([str(ROOT / "scripts" / "install-go-tools.sh"), "ghz"]).strip()
    return Path(tools_bin) / "ghz"


def write_catalog(path, count):
    """A catalog of `count` products, `bench-0` to `bench-<count-1>`."""
    products = [
        {
            "id": f"bench-{n}",
            "title": f"Benchmark product {n}",
            "description": "A product of the proxy benchmark's catalog, "
                           "about as long as the bundled ones.",
            "category": "bench",
            "price": {"currency_code": "USD", "amount": f"{n % 1000}.{n % 100:02d}"},
            "updated_at": "2026-01-01T00:00:00Z",
        }
        for n in range(count)
    ]
    path.write_text(json.dumps({"products": products}))


NGINX_CONF = """\
# nginx as a plain gRPC proxy, tuned as its docs advise: HTTP/2 to the
# client, kept-alive HTTP/2 connections to the backend, no access log. Its
# default closes a connection after 1000 requests, which a gRPC client sees
# as failed calls ("the connection is draining"): raised, both sides.
worker_processes 2;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path {work}/nginx-tmp;
    upstream backend {{
        server {backend};
        keepalive 32;
        keepalive_requests 1000000;
    }}
    server {{
        listen {listen} http2;
        location / {{
            grpc_pass grpc://backend;
        }}
    }}
}}
"""


def pinned(cpu, args):
    return ["taskset", "-c", cpu, *args]


def rss_kib(pid):
    """The resident memory of a process and its children, in KiB."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    total = 0
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def load(ghz, address, requests, concurrency, rate=None):
    """One ghz run of GetProduct against `address`; its JSON report."""
    args = [str(ghz), "--insecure",
            "--proto", str(ROOT / "proto" / "catalog" / "v1" / "catalog.proto"),
            "--import-paths", str(ROOT / "proto"),
            "--call", "catalog.v1.CatalogService.GetProduct",
            "-d", '{"id": "bench-{{.RequestNumber}}"}',
            "-n", str(requests), "-c", str(concurrency), "--connections", "1",
            "--timeout", "10s", "-O", "json"]
    if rate:
        args += ["--rps", str(rate)]
    report = json.loads(run(pinned(LOAD_CPU, [*args, address])))
    codes = report.get("statusCodeDistribution", {})
    if set(codes) != {"OK"}:
        errors = list(report.get("errorDistribution", {}))
        raise CheckFailed(f"{address}: not every call succeeded: {codes}; "
                          f"{len(errors)} distinct errors, the first: {errors[:3]}")
    return report


def percentile(report, percentage):
    for entry in report["latencyDistribution"]:
        if entry["percentage"] == percentage:
            return entry["latency"] / 1000  # ns to µs
    raise CheckFailed(f"no p{percentage} in the report")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000,
                        help="calls per case and round at full speed")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=int, default=1_000,
                        help="calls per second of the fixed-rate runs (5 s each)")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()

    missing = [tool for tool in ("nginx", "redis-server", "go", "taskset")
               if shutil.which(tool) is None]
    if missing:
        print(f"proxy-bench: needs {', '.join(missing)} on PATH (Debian: nginx-light, "
              "redis-server, util-linux; Go from https://go.dev/dl/)", file=sys.stderr)
        return 2
    ghz = ghz_binary()
    log("building the services (release)")
    run(["cargo", "build", "--release", "--locked", "-p", "backend", "-p", "gateway"], cwd=ROOT)
    release = ROOT / "target" / "release"

    stack = Stack(WORK / "logs", log)
    try:
        catalog = WORK / "catalog.json"
        write_catalog(catalog, max(options.requests, options.rate * 5, WARM_UP))
        (WORK / "nginx-tmp").mkdir(exist_ok=True)
        os.chmod(WORK / "nginx-tmp", 0o777)

        ports = {name: free_port() for name in
                 ("backend", "backend-admin", "nginx", "gateway", "gateway-admin",
                  "redis", "gateway-redis", "gateway-redis-admin")}
        address = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
        env = {**os.environ, "RUST_LOG": "warn"}
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)

        processes = {}
        processes["backend, direct"] = stack.start("backend", pinned(SERVICE_CPU, [
            str(release / "backend"), "--listen", address["backend"],
            "--admin-listen", address["backend-admin"], "--catalog", str(catalog)]), env=env)
        (WORK / "nginx.conf").write_text(NGINX_CONF.format(
            work=WORK, backend=address["backend"], listen=address["nginx"]))
        processes["nginx grpc_pass"] = stack.start("nginx", pinned(SERVICE_CPU, [
            "nginx", "-c", str(WORK / "nginx.conf"), "-p", str(WORK)]))
        stack.start("redis", pinned(SERVICE_CPU, [
            "redis-server", "--port", str(ports["redis"]), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(WORK)]))
        processes["gateway"] = stack.start("gateway", pinned(SERVICE_CPU, [
            str(release / "gateway"), "--listen", address["gateway"],
            "--admin-listen", address["gateway-admin"],
            "--backend-url", f"http://{address['backend']}"]), env=env)
        processes["gateway + Redis"] = stack.start("gateway-redis", pinned(SERVICE_CPU, [
            str(release / "gateway"), "--listen", address["gateway-redis"],
            "--admin-listen", address["gateway-redis-admin"],
            "--backend-url", f"http://{address['backend']}",
            "--redis-url", f"redis://{address['redis']}"]), env=env)

        cases = {
            "backend, direct": address["backend"],
            "nginx grpc_pass": address["nginx"],
            "gateway": address["gateway"],
            "gateway + Redis": address["gateway-redis"],
        }
        for name, target in cases.items():
            wait_until(f"{name} to answer", lambda target=target: answers(ghz, target),
                       stack=stack)
            load(ghz, target, WARM_UP, options.concurrency)

        results = {name: {"rps": [], "p50": [], "p99": [], "rate p50": [], "rate p99": []}
                   for name in cases}
        for round_number in range(1, options.rounds + 1):
            for name, target in cases.items():
                full = load(ghz, target, options.requests, options.concurrency)
                fixed = load(ghz, target, options.rate * 5, options.concurrency, options.rate)
                result = results[name]
                result["rps"].append(full["rps"])
                result["p50"].append(percentile(full, 50))
                result["p99"].append(percentile(full, 99))
                result["rate p50"].append(percentile(fixed, 50))
                result["rate p99"].append(percentile(fixed, 99))
                log(f"round {round_number}, {name}: {full['rps']:.0f} calls/s, "
                    f"p50 {percentile(full, 50):.0f} µs; at {options.rate}/s "
                    f"p50 {percentile(fixed, 50):.0f} µs, p99 {percentile(fixed, 99):.0f} µs")
        stack.check_running()
        memory = {name: rss_kib(process.pid) for name, process in processes.items()}
        report(options, results, memory)
    except CheckFailed as error:
        print(f"proxy-bench: {error}", file=sys.stderr)
        stack.dump_logs()
        return 1
    finally:
        stack.stop()
    return 0


def answers(ghz, target):
    try:
        load(ghz, target, 1, 1)
        return True
    except CheckFailed:
        return False


def report(options, results, memory):
    median = {name: {key: statistics.median(values) for key, values in result.items()}
              for name, result in results.items()}
    base, nginx = median["backend, direct"], median["nginx grpc_pass"]
    print()
    print(f"{options.rounds} rounds; full speed: {options.requests} calls at concurrency "
          f"{options.concurrency}; fixed rate: {options.rate} calls/s for 5 s. "
          "Medians of the rounds; ratios against the backend called directly "
          "(and against nginx).")
    print()
    print("| path | calls/s | p50 | p99 | p50 at fixed rate | p99 at fixed rate | RSS after |")
    print("|---|---|---|---|---|---|---|")
    for name, result in median.items():
        def cell(key, unit, digits=0, higher_is_better=False):
            value = result[key]
            text = f"{value:,.{digits}f} {unit}".strip()
            if name == "backend, direct":
                return text
            ratio = f"{value / base[key]:.2f}×"
            if name != "nginx grpc_pass":
                ratio += f", {value / nginx[key]:.2f}× nginx"
            return f"{text} ({ratio})"
        print(f"| {name} | {cell('rps', '')} | {cell('p50', 'µs')} | {cell('p99', 'µs')} | "
              f"{cell('rate p50', 'µs')} | {cell('rate p99', 'µs')} | "
              f"{memory[name] / 1024:.1f} MiB |")

if __name__ == "__main__":
    sys.exit(main())
