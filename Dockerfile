# Atelier's container image: the web app and the Discord bot in one process.
# Build stage: the locked dependencies, release profile, the same command as `cargo run --release` builds.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin atelier

# Run stage: a small Debian with CA certificates, as a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/atelier --create-home atelier
COPY --from=build /src/target/release/atelier /usr/local/bin/atelier
USER 10001
WORKDIR /var/lib/atelier
# In a container the app listens on every interface; the load balancer probes /healthz and /readyz.
ENV ATELIER_BIND=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/atelier"]
CMD ["serve"]
