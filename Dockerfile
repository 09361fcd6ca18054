# Bindery's container image: the `bindery` binary only, on a small runtime base, as a
# non-root user. Multi-stage: the first stage builds the release binary (its debug
# info stripped: the release profile keeps line tables for backtraces).
#
#   podman build -t bindery:0.1.0 .        (or docker build)
#
# The base images are arguments, so that a machine without a registry can build from
# local bases (scripts/image.sh makes both from Debian packages and checks the result).
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --package bindery --bin bindery \
    && cp target/release/bindery /bindery \
    && strip --strip-debug /bindery

FROM ${RUNTIME_IMAGE}
COPY --from=build /bindery /usr/local/bin/bindery
# distroless's `nonroot` user; the chart's securityContext asks for the same ids.
USER 65532:65532
# /metrics, /readyz, /livez, the dashboard and /explain (with --listen 0.0.0.0:9477).
EXPOSE 9477
ENTRYPOINT ["/usr/local/bin/bindery"]
CMD ["run", "--listen", "0.0.0.0:9477"]
