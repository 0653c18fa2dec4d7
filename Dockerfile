# Dockerfile: the rmake farm's images, from host-built release binaries (no Rust toolchain inside).
#
#   mkdir -p dist && cp target/release/rmake-coordinator target/release/rmake-worker dist/
#   docker build --target coordinator -t rmake-coordinator .
#   docker build --target worker -t rmake-worker .
#
# BASE is any Debian bookworm image: the registry's debian:bookworm-slim (the default), or one
# built without a registry by scripts/base-image.sh (`--build-arg BASE=rmake-base:bookworm`), or a
# team's own toolchain image. The binaries are linked against the host's glibc, so the base must
# carry the same or a newer one (bookworm's 2.36 for binaries built on Debian 12).
# Works with the classic builder and with BuildKit (no BuildKit-only syntax).

ARG BASE=debian:bookworm-slim

# ---- common: the non-root user and its directories ----
FROM ${BASE} AS common
RUN set -eu; \
    groupadd --system --gid 10001 rmake; \
    useradd --system --uid 10001 --gid rmake --home-dir /var/lib/rmake --no-create-home \
        --shell /usr/sbin/nologin rmake; \
    install -d -o rmake -g rmake -m 0750 /var/lib/rmake /var/lib/rmake/coordinator /var/lib/rmake/worker
ENV LANG=C.UTF-8

# The binaries are copied last: a rebuild with new binaries reuses every layer above them.

# ---- coordinator: CAS, action cache, scheduler ----
FROM common AS coordinator
ENV RMAKE_LISTEN=0.0.0.0:8080 \
    RMAKE_DATA_DIR=/var/lib/rmake/coordinator
VOLUME ["/var/lib/rmake/coordinator"]
EXPOSE 8080
USER rmake:rmake
WORKDIR /var/lib/rmake
# curl is not in a minimal Debian: bash's /dev/tcp asks /healthz for {"status":"ok"}.
HEALTHCHECK --interval=3s --timeout=3s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${RMAKE_LISTEN##*:} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && timeout 2 grep -q '\"status\":\"ok\"' <&3"]
ENTRYPOINT ["rmake-coordinator"]
COPY dist/rmake-coordinator /usr/local/bin/rmake-coordinator

# ---- worker: runs recipes with the image's toolchain ----
FROM common AS worker
# The toolchain: already there in a base from scripts/base-image.sh or a team's image; from apt
# on a registry's slim image.
RUN set -eu; \
    if command -v gcc >/dev/null && command -v make >/dev/null && command -v as >/dev/null; then \
        echo "toolchain from the base image: $(gcc -dumpfullversion), $(make --version | head -n1)"; \
    else \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            gcc g++ make libc6-dev binutils ca-certificates; \
        rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin; \
    fi
# Exec roots and the blob cache: a volume, so they live on the host's filesystem, not the
# container's copy-on-write layer.
VOLUME ["/var/lib/rmake/worker"]
USER rmake:rmake
WORKDIR /var/lib/rmake
# Further flags (--slots N, --platform key=value, --name) come after it: `command:` in compose.
ENTRYPOINT ["rmake-worker", "--work-dir", "/var/lib/rmake/worker"]
COPY dist/rmake-worker /usr/local/bin/rmake-worker
