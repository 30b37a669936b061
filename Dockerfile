# Atelier's container image: the web app and the Discord bot in one binary.
#
# Build: docker build -t atelier .   (the infra/ stack runs it on Fargate; README "Deploying to AWS")
#
# Base images are pinned by tag. Pin them by digest as well when you build for production
# (`docker buildx imagetools inspect rust:1.95-slim-bookworm` prints it; write
# `FROM rust:1.95-slim-bookworm@sha256:…`): the digests cannot be fetched where this file is
# checked (no registry access), so they are not written here.
#
# tests/deploy.rs checks this file against the workspace: the build command, the toolchain
# version, the binary's path, the user the image runs as and the spool folder.

# ── Toolchain with cargo-chef: the same Rust as Cargo.toml's rust-version, and Debian 12 like the runtime.
FROM rust:1.95-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# ── A recipe of the workspace's dependencies, which changes only when Cargo.toml or Cargo.lock do.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# ── Dependencies first (a cached layer while only our code changes), then the binary, with the
#    locked dependencies and the release profile: what `cargo run --release` builds.
FROM chef AS build
# The spool's folder, empty, for the runtime stage to copy with the non-root user as owner
# (distroless has no shell to make it there). Only its owner may read spooled images.
RUN mkdir -p /spool/var/lib/atelier/spool && chmod 0700 /spool/var/lib/atelier/spool
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin atelier
COPY . .
RUN cargo build --release --locked --bin atelier

# ── Runtime: glibc, libgcc, CA certificates and a non-root user, nothing else (no shell, no
#    package manager). The stylesheet is compiled into the binary (web/src/routes/home.rs), so
#    there are no static files to copy.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=build /src/target/release/atelier /usr/local/bin/atelier
# The spool (ATELIER_SPOOL_DIR): images made while the store is down wait here until it is
# back. A volume, so it is writable under a read-only root filesystem. On Fargate the task's
# bind mount at this path (infra/, SPOOL_DIR) starts as a copy of this folder, owner and mode
# included, because the path matches a VOLUME of the image; any other bind mount would start
# owned by root, where the non-root user cannot write. With plain `docker run` it is an
# anonymous volume, kept across restarts of the container.
COPY --from=build --chown=65532:65532 /spool/var/lib/atelier /var/lib/atelier
ENV ATELIER_SPOOL_DIR=/var/lib/atelier/spool
VOLUME ["/var/lib/atelier/spool"]
# distroless's nonroot user, by number so that any runtime can tell it is not root.
USER 65532:65532
WORKDIR /home/nonroot
# In a container the app listens on every interface.
ENV ATELIER_BIND=0.0.0.0:8080
# Logs go to a log store, one JSON object a line (a job's lines share its job_id).
ENV ATELIER_LOG_FORMAT=json
EXPOSE 8080
# No HEALTHCHECK: the load balancer probes GET /healthz on every task (infra/), and the image
# has no shell or curl to run one with.
# checkov:skip=CKV_DOCKER_2: health is checked by the load balancer (/healthz), not by Docker; the image has no shell to run a check
ENTRYPOINT ["/usr/local/bin/atelier"]
CMD ["serve"]
