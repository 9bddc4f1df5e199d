#!/usr/bin/env python3
"""Proves the Docker Compose stack piece by piece, without a Docker engine.

1. The compose files load and validate with compose-go, the library Docker
   Compose itself uses, and pass the checks of tools/compose-check (pinned
   images, existing paths, defaults for every variable, Dockerfile parsed
   and linted by BuildKit, health-check conditions, loopback-only admin
   ports); prometheus.yml loads as Prometheus loads it, and the Grafana
   dashboard's queries parse as PromQL.
2. otel-collector.yaml (alone, and with its debug overlay) is accepted by
   `validate` of a real collector, built with the official builder from the
   modules of the release the compose file pins.
3. End to end: a real Jaeger v2 (built from its Go module, the release the
   compose file pins), the collector with otel-collector.yaml, redis-server,
   and both services started with the environment, commands and health
   checks of docker-compose.yml. Each compose service gets a loopback
   address of its own (127.0.0.11-15), as each container has an IP of its
   own; the only change to the compose settings is that address in place of
   a service's host name. Then the README's failure demo runs with grpcurl,
   and the script checks that Jaeger's query API shows each request as one
   trace with spans from both services and the breaker's decisions on them,
   and that every target of prometheus.yml serves the metrics the Grafana
   dashboard queries.

The Go tools are built once into target/compose-check/bin (about ten
minutes on two cores; Jaeger is most of it) and rebuilt only when their
pinned versions change.

    scripts/compose-check.py                      # everything
    scripts/compose-check.py --static             # steps 1 and 2 only
    scripts/compose-check.py --binaries target/debug \
        --jaeger-ui ../jaeger-ui/packages/jaeger-ui/build --screenshot docs/jaeger-trace.png

The picture in the README was taken that way, with jaeger-ui v1.74.0 built
from its sources (`npm ci` with npm 10, then `npm run build` in
packages/jaeger-ui) and Debian's chromium.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from checklib import CheckFailed, Stack, http_get, run, tcp_open, wait_until

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools" / "compose-check"
WORK = ROOT / "target" / "compose-check"
BIN = WORK / "bin"

COMPOSE_FILES = ["docker-compose.yml"]
DEBUG_OVERLAY = "docker-compose.debug.yml"
COLLECTOR_CONFIG = "otel-collector.yaml"
COLLECTOR_DEBUG = "otel-collector.debug.yaml"
DASHBOARD = "grafana/dashboards/resilient-catalog.json"
# The only port of the stack that may listen on every interface.
PUBLIC_PORTS = "gateway:50051"
# The collector builder, at the release of the pinned collector image.
OCB = "go.opentelemetry.io/collector/cmd/builder@v0.165.0"

# One loopback address per compose service, as one IP per container.
ADDRESSES = {
    "redis": "127.0.0.11",
    "backend": "127.0.0.12",
    "gateway": "127.0.0.13",
    "otel-collector": "127.0.0.14",
    "jaeger": "127.0.0.15",
}


def log(message):
    print(f"compose-check: {message}", flush=True)


# --- The Go tools -----------------------------------------------------------


def digest(*paths):
    hasher = hashlib.sha256()
    hasher.update(run(["go", "version"]).encode())
    for path in paths:
        hasher.update(Path(path).read_bytes())
    return hasher.hexdigest()


def fresh(name, stamp):
    """Whether BIN/name was built from the inputs that make `stamp`."""
    stamp_file = BIN / f"{name}.stamp"
    return (BIN / name).exists() and stamp_file.exists() and stamp_file.read_text() == stamp


def build_tools():
    """Builds compose-check, the collector and Jaeger, each only if its
    pinned inputs changed; the collector and Jaeger in parallel."""
    BIN.mkdir(parents=True, exist_ok=True)
    run(["go", "build", "-o", str(BIN / "compose-check"), "."], cwd=TOOLS)

    builds = []
    manifest = TOOLS / "otelcol-builder.yaml"
    otelcol_stamp = digest(manifest)
    if not fresh("otelcol", otelcol_stamp):
        log("building the OpenTelemetry Collector with ocb (a few minutes, once)")
        out = WORK / "otelcol"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        # output_path in the manifest is relative to the working directory.
        builds.append(("otelcol", otelcol_stamp, out / "otelcol-dist" / "otelcol",
                       subprocess.Popen(["go", "run", OCB, "--config", str(manifest)], cwd=out,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    jaeger_module = TOOLS / "jaeger"
    jaeger_stamp = digest(jaeger_module / "go.mod", jaeger_module / "go.sum")
    if not fresh("jaeger", jaeger_stamp):
        log("building Jaeger v2 from its Go module (several minutes, once)")
        target = WORK / "jaeger.build"
        builds.append(("jaeger", jaeger_stamp, target,
                       subprocess.Popen(["go", "build", "-o", str(target),
                                         "github.com/jaegertracing/jaeger/cmd/jaeger"],
                                        cwd=jaeger_module, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)))
    for name, stamp, built, process in builds:
        output, _ = process.communicate()
        if process.returncode != 0:
            raise CheckFailed(f"building {name} failed:\n{output}")
        shutil.copy2(built, BIN / name)
        (BIN / f"{name}.stamp").write_text(stamp)


# --- Static checks ------------------------------------------------------------


def compose_check(files, env_json=False):
    args = [str(BIN / "compose-check"), "-C", str(ROOT), "-public", PUBLIC_PORTS,
            "-prometheus", "prometheus.yml", "-dashboard", DASHBOARD]
    if env_json:
        args.append("-env-json")
    return run(args + files)


def static_checks():
    print(compose_check(COMPOSE_FILES).strip(), flush=True)
    print(compose_check(COMPOSE_FILES + [DEBUG_OVERLAY]).strip(), flush=True)
    otelcol = str(BIN / "otelcol")
    for configs in ([COLLECTOR_CONFIG], [COLLECTOR_CONFIG, COLLECTOR_DEBUG]):
        args = [otelcol, "validate"] + [f"--config={ROOT / c}" for c in configs]
        run(args)
        log(f"otelcol validate: {' + '.join(configs)}: valid")

    dashboard = json.loads((ROOT / DASHBOARD).read_text())
    datasources = (ROOT / "grafana/provisioning/datasources/prometheus.yaml").read_text()
    for panel in dashboard["panels"]:
        uid = panel["datasource"]["uid"]
        if f"uid: {uid}" not in datasources:
            raise CheckFailed(f"dashboard panel {panel['title']!r} uses data source {uid!r}, "
                              "which grafana/provisioning does not provision")
    log(f"grafana: {len(dashboard['panels'])} panels, their queries valid PromQL, "
        "all on the provisioned data source")


# --- The stack, started as the compose file starts it -------------------------


def outside_containers(service, value):
    """A compose value as it reads outside containers: service host names
    become their loopback addresses, and a wildcard listen address becomes
    the service's own."""
    for name, address in ADDRESSES.items():
        value = re.sub(rf"(?<=//){re.escape(name)}(?=:)", address, value)
    return value.replace("0.0.0.0:", f"{ADDRESSES[service]}:")


def service_env(compose, service):
    env = {"PATH": os.environ["PATH"]}
    for key, value in compose[service]["environment"].items():
        env[key] = outside_containers(service, value)
    return env


def healthcheck(compose_service, binaries):
    """The compose health check of one of our services, with the image's
    binary path mapped to the local binary."""
    test = compose_service["healthcheck"]
    return [str(binaries / Path(arg).name) if arg.startswith("/usr/local/bin/") else arg
            for arg in test]


def start_stack(stack, compose, binaries, jaeger_ui=None):
    # Jaeger, as its image runs it: no arguments, the built-in all-in-one
    # configuration, listening on JAEGER_LISTEN_HOST (0.0.0.0 in the image).
    # A binary built from the Go module has no UI embedded (the release
    # build embeds the jaeger-ui it builds with npm): given the built
    # jaeger-ui, it serves that, for --screenshot.
    jaeger = ADDRESSES["jaeger"]
    ui = [] if jaeger_ui is None else [
        f"--set=extensions.jaeger_query.ui.assets_path={jaeger_ui.resolve()}"]
    # Jaeger traces itself to localhost:4317, which in its container is
    # Jaeger: here, its own address.
    stack.start("jaeger", [str(BIN / "jaeger")] + ui,
                env={"PATH": os.environ["PATH"], "JAEGER_LISTEN_HOST": jaeger,
                     "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://{jaeger}:4317"})
    wait_until("Jaeger's health check", lambda: http_get(f"http://{jaeger}:13133/status")[0] == 200,
               stack=stack)
    log(f"jaeger: healthy on {jaeger}")

    # The collector with the compose command, the bind mounts mapped back
    # to the repository, and one overlay of addresses.
    collector = ADDRESSES["otel-collector"]
    overlay = WORK / "otel-collector.addresses.yaml"
    overlay.write_text(f"""# The addresses of the services outside containers; nothing else.
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {collector}:4317
      http:
        endpoint: {collector}:4318
exporters:
  otlp_grpc/jaeger:
    endpoint: {jaeger}:4317
service:
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: {collector}
                port: 8888
""")
    command = list(compose["otel-collector"]["command"])
    for source, target in compose["otel-collector"]["binds"]:
        command = [arg.replace(target, source) for arg in command]
    stack.start("otel-collector", [str(BIN / "otelcol")] + command + [f"--config={overlay}"])
    wait_until("the collector's OTLP receiver", lambda: tcp_open(collector, 4317), stack=stack)
    log(f"otel-collector: receiving on {collector}:4317, exporting to jaeger")

    redis = ADDRESSES["redis"]
    stack.start("redis", compose["redis"]["command"] + ["--bind", redis, "--port", "6379"])
    wait_until("redis", lambda: run(["redis-cli", "-h", redis, "ping"]).strip() == "PONG", stack=stack)
    log(f"redis: answering on {redis}:6379")

    for name in ("backend", "gateway"):
        env = service_env(compose, name)
        stack.start(name, [str(binaries / name)] + compose[name]["command"], env=env)
        check = healthcheck(compose[name], binaries)
        wait_until(f"{name}'s health check ({' '.join(check)})",
                   lambda: subprocess.run(check, env=env, capture_output=True).returncode == 0,
                   stack=stack)
        log(f"{name}: healthy ({' '.join(Path(a).name for a in check)})")


# --- The README's demo, and what Jaeger and Prometheus then show ---------------


def grpcurl(*args):
    return run(["grpcurl", "-plaintext", "-max-time", "20"] + list(args))


def metadata(output, key):
    match = re.search(rf"^{key}: (.*)$", output, re.MULTILINE)
    return match.group(1).strip() if match else None


def demo():
    gateway = f"{ADDRESSES['gateway']}:50051"
    backend = f"{ADDRESSES['backend']}:50052"
    get = ["-v", "-d", '{"id": "sku-1001"}', gateway, "catalog.v1.CatalogService/GetProduct"]

    first = grpcurl(*get)
    if metadata(first, "x-cache") != "miss":
        raise CheckFailed(f"the first answer should come from the backend:\n{first}")
    grpcurl("-d", '{"error_rate": 1}', backend, "backend.v1.ChaosService/SetFaults")
    answers = [grpcurl(*get) for _ in range(6)]
    caches = [metadata(a, "x-cache") for a in answers]
    states = [metadata(a, "x-circuit-state") for a in answers]
    if caches != ["stale"] * 6 or states[-1] != "open":
        raise CheckFailed(f"after the backend failed: x-cache {caches}, x-circuit-state {states}")
    log(f"demo: miss, then the backend failed: x-cache {caches[0]} x6, "
        f"x-circuit-state {' '.join(states)}")


def jaeger_traces(service):
    url = (f"http://{ADDRESSES['jaeger']}:16686/api/traces"
           f"?service={service}&limit=100&lookback=1h")
    status, body = http_get(url)
    if status != 200:
        raise CheckFailed(f"{url}: HTTP {status}")
    return json.loads(body)["data"]


def tags(span):
    return {tag["key"]: tag["value"] for tag in span.get("tags", [])}


def services_of(trace):
    return {trace["processes"][span["processID"]]["serviceName"] for span in trace["spans"]}


def check_traces():
    """The first request (a miss) is one trace across both services; a
    request the open circuit refused is one trace with the decision on it,
    and no backend span."""

    def found():
        traces = jaeger_traces("gateway")
        miss = rejected = None
        for trace in traces:
            attributes = [tags(span) for span in trace["spans"]]
            caches = {a.get("cache.status") for a in attributes}
            if "miss" in caches and services_of(trace) >= {"gateway", "backend"}:
                miss = trace
            if "stale" in caches and any(a.get("circuit.decision") == "rejected" for a in attributes):
                rejected = trace
        return (miss, rejected) if miss and rejected else None

    miss, rejected = wait_until("the demo's traces in Jaeger", found, timeout=60)

    # In the miss trace, the backend's server span descends from the
    # gateway's client span: one trace, not two joined by time.
    spans = {span["spanID"]: span for span in miss["spans"]}

    def parent(span):
        for reference in span.get("references", []):
            if reference["refType"] == "CHILD_OF":
                return spans.get(reference["spanID"])
        return None

    backend_server = next(
        span for span in miss["spans"]
        if miss["processes"][span["processID"]]["serviceName"] == "backend"
        and tags(span).get("span.kind") == "server")
    ancestor, chain = parent(backend_server), []
    while ancestor is not None:
        chain.append((miss["processes"][ancestor["processID"]]["serviceName"],
                      ancestor["operationName"], tags(ancestor).get("span.kind")))
        ancestor = parent(ancestor)
    if ("gateway", "catalog.v1.CatalogService/GetProduct", "client") not in chain:
        raise CheckFailed(f"the backend's span does not descend from the gateway's call: {chain}")
    if services_of(rejected) != {"gateway"}:
        raise CheckFailed(f"a call the open circuit refused reached {services_of(rejected)}")
    log(f"jaeger: trace {miss['traceID']}: {len(miss['spans'])} spans from "
        f"{' and '.join(sorted(services_of(miss)))}, the backend's under the gateway's call")
    log(f"jaeger: trace {rejected['traceID']}: circuit.decision=rejected, cache.status=stale, "
        "the gateway's spans only")
    return miss["traceID"]


def check_metrics():
    """Every target of prometheus.yml serves /metrics, and every metric the
    dashboard queries is in what they serve."""
    config = (ROOT / "prometheus.yml").read_text()
    targets = re.findall(r'"([a-z-]+):(\d+)"', config)
    if not targets:
        raise CheckFailed("prometheus.yml has no targets")
    scraped = ""
    for host, port in targets:
        status, body = http_get(f"http://{ADDRESSES[host]}:{port}/metrics")
        if status != 200 or not body:
            raise CheckFailed(f"{host}:{port}/metrics: HTTP {status}")
        scraped += body
        log(f"prometheus target {host}:{port}: {len(body.splitlines())} lines of metrics")
    dashboard = (ROOT / DASHBOARD).read_text()
    expressions = [t["expr"] for p in json.loads(dashboard)["panels"] for t in p["targets"]]
    names = set()
    for expression in expressions:
        # Metric names only: not the label names of selectors or `by (...)`.
        bare = re.sub(r"\{[^}]*\}|\bby \([^)]*\)", "", expression)
        names.update(re.findall(r"\b((?:circuit_breaker|gateway|backend|rpc)_[a-z_]+)\b", bare))
    present = set(re.findall(r"^([a-z_]+?)(?:_bucket|_count|_sum)?(?:\{| )", scraped, re.MULTILINE))
    present |= set(re.findall(r"^([a-z_]+)(?:\{| )", scraped, re.MULTILINE))
    missing = sorted(name for name in names if name not in present)
    if missing:
        raise CheckFailed(f"the dashboard queries metrics no target serves: {missing}")
    open_state = ('circuit_breaker_state{circuit="/catalog.v1.CatalogService/GetProduct",'
                  'state="open"} 1')
    if open_state not in scraped:
        raise CheckFailed("the gateway's metrics do not show the GetProduct circuit open")
    log(f"grafana: the {len(names)} metrics the dashboard queries are all served; "
        "circuit_breaker_state shows GetProduct open")


def screenshot(trace_id, path):
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                    if shutil.which(b)), None)
    if browser is None:
        raise CheckFailed("--screenshot needs chromium (apt-get install chromium)")
    path = Path(path).resolve()
    url = f"http://{ADDRESSES['jaeger']}:16686/trace/{trace_id}"
    run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1400,430", "--virtual-time-budget=20000", f"--screenshot={path}", url])
    log(f"screenshot of {url}: {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--static", action="store_true",
                        help="check the files only; start nothing")
    parser.add_argument("--binaries", type=Path,
                        help="where the backend and gateway binaries are "
                             "(default: build them with cargo build --release)")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="save a picture of the first trace in Jaeger's UI (needs chromium "
                             "and --jaeger-ui)")
    parser.add_argument("--jaeger-ui", type=Path, metavar="DIR",
                        help="a built jaeger-ui (packages/jaeger-ui/build of jaeger-ui v1.74.0, "
                             "the one Jaeger 2.12.0 embeds) for Jaeger to serve")
    options = parser.parse_args()

    try:
        build_tools()
        static_checks()
        if options.static:
            return 0
        if options.screenshot and options.jaeger_ui is None:
            parser.error("--screenshot needs --jaeger-ui: the Jaeger built here has no UI of its own")
        binaries = options.binaries
        if binaries is None:
            run(["cargo", "build", "--release", "--locked", "-p", "backend", "-p", "gateway"], cwd=ROOT)
            binaries = ROOT / "target" / "release"
        binaries = binaries.resolve()

        resolved = json.loads(compose_check(COMPOSE_FILES, env_json=True))
        compose = {}
        for name, service in resolved.items():
            compose[name] = {
                "environment": service["environment"],
                "command": service["command"],
                "healthcheck": service["healthcheck"],
                "binds": [(b["source"], b["target"]) for b in service["binds"]],
            }
        stack = Stack(WORK / "logs", log)
        try:
            start_stack(stack, compose, binaries, options.jaeger_ui)
            demo()
            trace_id = check_traces()
            check_metrics()
            if options.screenshot:
                screenshot(trace_id, options.screenshot)
        except BaseException:
            stack.stop()
            stack.dump_logs()
            raise
        stack.stop()
        log("the compose stack checks out")
        return 0
    except CheckFailed as failure:
        print(f"compose-check: FAILED: {failure}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
