"""The scenario of ../README.md, as a Python client of the catalog gateway.

Run it with run.sh, which generates the gRPC code into gen/ first.
"""

import os
import re
import sys
import time
from pathlib import Path

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

# The generated code lives in gen/ (made by run.sh from the repository's
# proto/); its modules import each other as `catalog.v1...`, so gen/ itself
# must be on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent / "gen"))

from backend.v1 import chaos_pb2, chaos_pb2_grpc  # noqa: E402
from catalog.v1 import catalog_pb2, catalog_pb2_grpc  # noqa: E402

GATEWAY = os.environ.get("CATALOG_GATEWAY", "localhost:50051")
BACKEND = os.environ.get("CATALOG_BACKEND", "localhost:50052")

# Every call gets a deadline: without one a call to a stuck server waits
# forever. 5 s unless a step needs its own.
DEADLINE_S = 5.0


# What a stale first answer most likely means.
STILL_OPEN = "is the circuit still open from an earlier run? Wait 10 s, or reset it: see examples/clients/README.md"


class Unmet(Exception):
    """An expectation of the scenario that the answer did not meet."""


def expect(condition, expected, got):
    if not condition:
        raise Unmet(f"expected {expected}, got {got}")


def metadata(call):
    """The response metadata of a call (or of an RpcError) as a dict.

    The gateway sends x-cache and friends in the response headers (initial
    metadata) on success; on an error there are no headers and they come in
    the trailers. Read both, headers first.
    """
    merged = {}
    for key, value in (*(call.initial_metadata() or ()), *(call.trailing_metadata() or ())):
        merged.setdefault(key, value)
    return merged


def rpc_name(request):
    # GetProductRequest -> GetProduct, to say which call an error came from.
    return type(request).__name__.removesuffix("Request")


def call_ok(method, request, timeout=DEADLINE_S):
    """Calls a unary method that must succeed; returns (response, metadata).

    with_call, unlike a plain call, also returns the call, and with it the
    response metadata.
    """
    try:
        response, call = method.with_call(request, timeout=timeout)
    except grpc.RpcError as error:
        raise Unmet(
            f"expected an answer to {rpc_name(request)}, got {error.code().name}: {error.details()}"
        ) from None
    return response, metadata(call)


def call_error(method, request, code, timeout=DEADLINE_S):
    """Calls a unary method that must fail with code; returns the grpc.RpcError.

    The error is also a grpc.Call: code(), details() and the metadata.
    """
    try:
        method.with_call(request, timeout=timeout)
    except grpc.RpcError as error:
        expect(error.code() == code, code.name, f"{error.code().name}: {error.details()}")
        return error
    raise Unmet(f"expected {code.name} from {rpc_name(request)}, got OK")


def format_money(money):
    """Money as a decimal string, "12.34 USD", from its integers: no float.

    units and nanos carry the same sign, so the sign comes from either and
    the digits from their absolute values. At least two decimals are shown,
    more when nanos has more.
    """
    negative = money.units < 0 or money.nanos < 0
    fraction = f"{abs(money.nanos):09d}".rstrip("0").ljust(2, "0")
    sign = "-" if negative else ""
    return f"{sign}{abs(money.units)}.{fraction} {money.currency_code}"


def set_faults(chaos, **faults):
    # SetFaults replaces all the faults: fields left out are cleared.
    call_ok(chaos.SetFaults, chaos_pb2.SetFaultsRequest(**faults))


def get_product(catalog):
    response, md = call_ok(catalog.GetProduct, catalog_pb2.GetProductRequest(id="sku-1001"))
    product = response.product
    expect(product.id == "sku-1001", "product sku-1001", f"product {product.id!r}")
    expect(
        md.get("x-cache") == "miss",
        "x-cache: miss",
        f"x-cache: {md.get('x-cache')}, x-circuit-state: {md.get('x-circuit-state')} "
        f"({STILL_OPEN})",
    )
    return f'{product.id} "{product.title}" at {format_money(product.price)}, x-cache: miss'


def page_through(catalog):
    ids, pages, token = [], 0, ""
    while True:
        response, _ = call_ok(
            catalog.ListProducts, catalog_pb2.ListProductsRequest(page_size=10, page_token=token)
        )
        pages += 1
        for product in response.products:
            # Strictly increasing also means no id twice.
            if ids:
                expect(product.id > ids[-1], f"an id after {ids[-1]!r}", repr(product.id))
            ids.append(product.id)
        token = response.next_page_token
        if not token:
            break
        # A server that kept sending tokens would loop forever: bound it.
        expect(pages < 1000, "a last page within 1000 pages", "more")
    expect(pages > 1, "more than one page", f"{pages} page")
    return f"{len(ids)} products in {pages} pages"


def unknown_id(catalog):
    request = catalog_pb2.GetProductRequest(id="sku-does-not-exist")
    error = call_error(catalog.GetProduct, request, grpc.StatusCode.NOT_FOUND)
    return f"NOT_FOUND ({error.details()})"


def own_deadline(catalog, chaos):
    set_faults(chaos, latency_ms=3000)
    started = time.monotonic()
    # sku-1003 has not been asked for, so the gateway has no cached answer
    # to fall back on: the caller's deadline is what ends the call.
    request = catalog_pb2.GetProductRequest(id="sku-1003")
    call_error(catalog.GetProduct, request, grpc.StatusCode.DEADLINE_EXCEEDED, timeout=0.5)
    took = time.monotonic() - started
    expect(took < 2.0, "an answer well before the backend's 3 s", f"one after {took:.3f} s")
    return f"DEADLINE_EXCEEDED after {took:.3f} s"


def backend_fails(catalog, chaos):
    set_faults(chaos, error_rate=1.0)
    for calls in range(1, 21):
        response, md = call_ok(catalog.GetProduct, catalog_pb2.GetProductRequest(id="sku-1001"))
        # The backend fails every call, so each answer is the one cached in
        # step 1, and says so.
        product_id = response.product.id
        expect(product_id == "sku-1001", "product sku-1001", f"product {product_id!r}")
        expect(md.get("x-cache") == "stale", "x-cache: stale", f"x-cache: {md.get('x-cache')}")
        age = md.get("x-cache-age", "")
        whole_seconds = re.fullmatch(r"[0-9]+", age)
        expect(whole_seconds, "x-cache-age in whole seconds", f"x-cache-age: {age!r}")
        if md.get("x-circuit-state") == "open":
            return (
                f"after {calls} calls: x-cache: {md['x-cache']}, x-cache-age: {age}, "
                f"x-circuit-state: {md['x-circuit-state']}"
            )
    raise Unmet(f"expected x-circuit-state: open within 20 calls, got {md.get('x-circuit-state')}")


def circuit_open(catalog):
    request = catalog_pb2.GetProductRequest(id="sku-never-cached")
    error = call_error(catalog.GetProduct, request, grpc.StatusCode.UNAVAILABLE)
    # The rich error model: a google.rpc.Status in the grpc-status-details-bin
    # trailer, whose details are Any messages.
    try:
        status = rpc_status.from_call(error)
    except ValueError as mismatch:  # the details disagree with the status
        raise Unmet(f"expected status details that match the status, got {mismatch}") from None
    expect(status is not None, "status details (grpc-status-details-bin)", "none")
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            delay = info.retry_delay
            positive = delay.seconds > 0 or delay.nanos > 0
            expect(positive, "a retry_delay above zero", delay.ToJsonString())
            return f"UNAVAILABLE, retry in {delay.ToJsonString()}"
    found = [detail.type_url for detail in status.details]
    raise Unmet(f"expected a google.rpc.RetryInfo detail, got {found}")


def clean_up(chaos):
    """Step 7: clears the faults; True when it did."""
    try:
        set_faults(chaos)
    except Unmet as unmet:
        print(f"7. clean up: FAILED: {unmet}", file=sys.stderr, flush=True)
        return False
    print("7. clean up: faults cleared", flush=True)
    return True


def run_steps(steps):
    """Runs the steps in order, one line each; False at the first that fails."""
    for number, (name, run) in enumerate(steps, start=1):
        try:
            print(f"{number}. {name}: {run()}", flush=True)
        except Unmet as unmet:
            print(f"{number}. {name}: FAILED: {unmet}", file=sys.stderr, flush=True)
            return False
    return True


def main():
    with grpc.insecure_channel(GATEWAY) as gateway, grpc.insecure_channel(BACKEND) as backend:
        catalog = catalog_pb2_grpc.CatalogServiceStub(gateway)
        chaos = chaos_pb2_grpc.ChaosServiceStub(backend)
        steps = [
            ("get a product", lambda: get_product(catalog)),
            ("page through the catalog", lambda: page_through(catalog)),
            ("an unknown id", lambda: unknown_id(catalog)),
            ("a deadline of its own", lambda: own_deadline(catalog, chaos)),
            ("the backend fails", lambda: backend_fails(catalog, chaos)),
            ("nothing cached, circuit open", lambda: circuit_open(catalog)),
        ]
        try:
            passed = run_steps(steps)
        finally:
            # Also after a failed step (or a crash): the backend must not be
            # left failing for whoever uses it next.
            cleaned = clean_up(chaos)
    if not (passed and cleaned):
        return 1
    print("scenario passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
