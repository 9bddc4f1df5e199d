# syntax=docker/dockerfile:1
#
# The backend and gateway images, from one build of the workspace:
#
#   docker build --target gateway -t resilient-catalog-gateway .
#   docker build --target backend -t resilient-catalog-backend .
#
# docker-compose.yml builds both. The dependencies compile in a layer of
# their own (cargo-chef), which only a change to a Cargo.toml or Cargo.lock
# rebuilds. The runtime image is distroless (glibc, libgcc, CA certificates;
# no shell, no package manager), runs as a non-root user, and checks its
# health with the binary's own `healthcheck` subcommand. No setting is baked
# in: every one is a flag or an environment variable (see the README).

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
# make: jemalloc, the services' allocator, builds with configure and make,
# which the slim image lacks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The recipe: the manifests and lock file, and nothing that changes with
# the code.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json -p backend -p gateway
COPY . .
RUN cargo build --release --locked -p backend -p gateway \
    && install -D -m 0755 -t /out target/release/backend target/release/gateway

# debian12 matches the builder's bookworm glibc; nonroot is uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
USER 65532:65532

FROM runtime AS backend
COPY --from=builder /out/backend /usr/local/bin/backend
# gRPC (catalog, chaos, health, reflection), then /metrics and health.
EXPOSE 50052 50054
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/backend", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/backend"]

FROM runtime AS gateway
COPY --from=builder /out/gateway /usr/local/bin/gateway
# gRPC (catalog, health, reflection), then admin gRPC, /metrics and health.
EXPOSE 50051 50053
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/gateway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/gateway"]
