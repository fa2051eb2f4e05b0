# spectra-sentinel container image.
#
#   podman build -t spectra-sentinel .          (or docker build)
#   podman run -d --name spectra-sentinel \
#     -v spectra-state:/var/lib/spectra-sentinel \
#     -e AZURE_STORAGE_CONNECTION_STRING=... -e SPECTRA_STORAGE_CONTAINER=reports \
#     -e SPECTRA_DCE_ENDPOINT=https://... -e SPECTRA_DCR_IMMUTABLE_ID=dcr-... \
#     -e AZURE_TENANT_ID=... -e AZURE_CLIENT_ID=... -e AZURE_CLIENT_SECRET=... \
#     spectra-sentinel
#
# The configuration is deploy/container/spectra-sentinel.yaml, which takes
# every value from an environment variable; mount a file of your own over
# /etc/spectra-sentinel/spectra-sentinel.yaml to replace it. docs/install.md
# has the details. The HEALTHCHECK needs the metrics listener, which that
# file puts on $SPECTRA_METRICS_LISTEN (default 0.0.0.0:9464); podman keeps a
# HEALTHCHECK only in the docker image format (podman build --format docker).

ARG BASE=docker.io/library/debian:bookworm-slim

# Build stage: the toolchain and the -dev packages, then `make all`.
FROM ${BASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config ca-certificates \
      libcurl4-openssl-dev libjansson-dev libssl-dev libuv1-dev libyaml-dev \
      zlib1g-dev libdeflate-dev libexpat1-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY include/ include/
COPY src/ src/
RUN make -j"$(nproc)" all \
 && ./build/spectra-sentinel --version \
 && strip --strip-unneeded -o /spectra-sentinel build/spectra-sentinel

# Runtime stage: the shared libraries only, plus curl for the HEALTHCHECK.
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates curl libcurl4 libjansson4 libuv1 libyaml-0-2 zlib1g \
      libdeflate0 libexpat1 libmicrohttpd12 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 spectra \
 && useradd --system --uid 10001 --gid spectra --no-create-home \
      --home-dir /var/lib/spectra-sentinel --shell /usr/sbin/nologin spectra \
 && install -d -o spectra -g spectra -m 0700 /var/lib/spectra-sentinel
COPY --from=build /spectra-sentinel /usr/bin/spectra-sentinel
COPY deploy/container/spectra-sentinel.yaml /etc/spectra-sentinel/spectra-sentinel.yaml
COPY LICENSE /usr/share/doc/spectra-sentinel/LICENSE

# The checkpoint and dead-letter directory: keep it on a volume, or every
# restart sends every report again.
VOLUME /var/lib/spectra-sentinel
USER 10001:10001
EXPOSE 9464
# SIGTERM: stop listing, finish or checkpoint in-flight work within
# shutdown_timeout (default 30s), exit 0. Give the container a stop timeout
# above that (podman/docker stop -t 45).
STOPSIGNAL SIGTERM
# The metrics listener (metrics.listen) comes from SPECTRA_METRICS_LISTEN;
# the health check asks /healthz on its port.
ENV SPECTRA_METRICS_LISTEN=0.0.0.0:9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD curl -fsS --max-time 4 -o /dev/null "http://127.0.0.1:${SPECTRA_METRICS_LISTEN##*:}/healthz"
ENTRYPOINT ["/usr/bin/spectra-sentinel"]
CMD ["run", "-c", "/etc/spectra-sentinel/spectra-sentinel.yaml"]
