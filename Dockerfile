# nosana-cache as a sidecar container.
#
#   docker build -t nosana-cache .
#   docker run -d --name nosana-cache --network host \
#     -v /var/run/docker.sock:/var/run/docker.sock --group-add "$(stat -c %g /var/run/docker.sock)" \
#     -v /var/lib/nosana-cache:/var/lib/nosana-cache \
#     nosana-cache
#
# The fence around job containers needs the host's firewall, which the daemon's user may not
# change: before the daemon (and again after a reboot), run the image once as root with
# NET_ADMIN on the host's network, with the same store and settings:
#
#   docker run --rm --network host --cap-add NET_ADMIN --user root \
#     -v /var/lib/nosana-cache:/var/lib/nosana-cache nosana-cache fence --install
#
# (`fence --remove` likewise takes it away.) The image's iptables is Debian's nf_tables one,
# as on current hosts; a host still on the legacy backend runs `nosana-cache fence --install`
# itself. Without this step the daemon says "unfenced" in its status.
#
# The store is mounted at the same path on both sides, so the bind mounts the daemon asks the
# engine for resolve on the host; mounted elsewhere, set NOSANA_CACHE_STORE__HOST_PATH to the
# host's path. The build takes wheels from PIP_FIND_LINKS when PIP_NO_INDEX=1 (offline builds).
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
ARG PIP_NO_INDEX=
ARG PIP_FIND_LINKS=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PIP_NO_INDEX=${PIP_NO_INDEX} PIP_FIND_LINKS=${PIP_FIND_LINKS}
COPY . /src
RUN python3 -m venv /opt/nosana-cache \
 && /opt/nosana-cache/bin/pip install /src

FROM ${BASE}
# iptables: for the fence's one-shot privileged step (`fence --install`, see below).
RUN command -v iptables >/dev/null || { apt-get update \
      && apt-get install -y --no-install-recommends iptables && rm -rf /var/lib/apt/lists/*; }
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/nosana-cache \
        --shell /usr/sbin/nologin nosana-cache \
 && mkdir -p /var/lib/nosana-cache \
 && chown nosana-cache:nosana-cache /var/lib/nosana-cache
COPY --from=build /opt/nosana-cache /opt/nosana-cache
ENV PATH=/opt/nosana-cache/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NOSANA_CACHE_STORE__PATH=/var/lib/nosana-cache
VOLUME ["/var/lib/nosana-cache"]
USER nosana-cache
EXPOSE 9810
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["nosana-cache", "health"]
ENTRYPOINT ["nosana-cache"]
CMD ["serve"]
