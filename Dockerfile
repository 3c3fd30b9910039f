# The voltfleet app-server image: one image for the five services, the service chosen by the
# command (`serve api`, `serve ocpp`, ...). README.md, "The container image", says how to build
# and run it; scripts/build-image.sh builds it for the app AMI.
#
# Where the binary comes from is chosen by the stage built:
#   (default, the last stage `image`)  built here in the `build` stage with the Rust toolchain;
#   --target prebuilt                   a binary built outside, the file `voltfleet` at the root
#                                       of the build context (built on Debian 12 or older, for
#                                       its glibc), and no Rust image is needed.
# A stage target rather than a build argument naming the stage: buildah 1.28 (Debian 12, and
# the podman on the app AMI) decides which stages to skip before it applies ARG defaults, so a
# `FROM ${STAGE}` would skip the stage the default names and fail.

ARG RUST_VERSION=1.95
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=unknown

# --- the binary, built with the Rust toolchain -------------------------------------------------
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
# cmake builds aws-lc (the AWS SDK's TLS) and zlib-ng (Pingora's compression).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The registry and the target directory are cache mounts, so a rebuild compiles only what
# changed; the binary is copied out of the cache, which is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin voltfleet \
    && install -D -m 0755 target/release/voltfleet /out/voltfleet \
    && strip /out/voltfleet

# --- what every voltfleet container has --------------------------------------------------------
FROM docker.io/library/debian:bookworm-slim AS runtime
# ca-certificates: RDS, ElastiCache and the AWS APIs over TLS. The fixed uid and gid 10001 let a
# host directory mounted at /var/lib/voltfleet be given to the user before the container starts.
# Versions are not pinned: bookworm is the pin, and Debian's security updates replace the exact
# versions, which would break a pinned build after each one.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 voltfleet \
    && useradd --uid 10001 --gid voltfleet --no-log-init --no-create-home \
        --home-dir /var/lib/voltfleet --shell /usr/sbin/nologin voltfleet \
    && install -d -o voltfleet -g voltfleet -m 0750 /var/lib/voltfleet

# Every service on 0.0.0.0 on its default port, so that the internal ALB reaches it over the
# host network; JSON logs for the journal and CloudWatch. The environment of `podman run`
# (app.env, <service>.env) overrides any of them.
ENV VOLTFLEET__DATA_DIR=/var/lib/voltfleet \
    VOLTFLEET__LOG__FORMAT=json \
    VOLTFLEET__API__LISTEN=0.0.0.0:8101 \
    VOLTFLEET__BACKOFFICE__LISTEN=0.0.0.0:8102 \
    VOLTFLEET__OCPP__LISTEN=0.0.0.0:8103 \
    VOLTFLEET__OCPI__LISTEN=0.0.0.0:8104 \
    VOLTFLEET__JOBS__LISTEN=0.0.0.0:8105
EXPOSE 8101 8102 8103 8104 8105
VOLUME ["/var/lib/voltfleet"]
WORKDIR /var/lib/voltfleet
USER 10001:10001
# SIGTERM drains: no new connections, requests in flight finish (shutdown.drain_timeout).
STOPSIGNAL SIGTERM
# With no service named, the check asks every service listening in the container.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["voltfleet", "healthcheck"]
ENTRYPOINT ["voltfleet"]
CMD ["--help"]

# scripts/build-image.sh sets these three again in a step of their own: buildah 1.28's layer
# cache would keep them from an earlier build with other values.
ARG VERSION
ARG REVISION
ARG CREATED
LABEL org.opencontainers.image.title="voltfleet" \
      org.opencontainers.image.description="voltfleet app server: the Back Office, API, OCPP, OCPI and Jobs services of an EV-charging operator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/voltfleet/voltfleet" \
      org.opencontainers.image.licenses="Apache-2.0"

# --- the image from a binary built outside (--target prebuilt) ---------------------------------
FROM runtime AS prebuilt
COPY voltfleet /usr/local/bin/voltfleet

# --- the image from the build stage (the default) ----------------------------------------------
FROM runtime AS image
COPY --from=build /out/voltfleet /usr/local/bin/voltfleet
