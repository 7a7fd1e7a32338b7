# The conventional image, for machines that can pull base images:
#   docker build -t girder:local .
# It runs as scripts/docker-image.sh's offline FROM-scratch image does: the
# binary at /usr/local/bin/girder, /etc/girder/girder.conf from
# deploy/docker/girder.conf, user girder (uid 1000), node.data_dir on the
# /data volume, entrypoint `girder`, command `start -c /etc/girder/girder.conf`.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p girder && cp target/release/girder /girder

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 1000 girder \
    && useradd --uid 1000 --gid 1000 --home-dir /data --no-create-home --shell /usr/sbin/nologin girder \
    && mkdir -p /data /etc/girder && chown 1000:1000 /data
COPY --from=build /girder /usr/local/bin/girder
COPY deploy/docker/girder.conf /etc/girder/girder.conf
USER 1000:1000
WORKDIR /data
VOLUME ["/data"]
EXPOSE 1883 4370 18083
ENTRYPOINT ["girder"]
CMD ["start", "-c", "/etc/girder/girder.conf"]
