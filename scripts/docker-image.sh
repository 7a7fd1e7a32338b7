#!/usr/bin/env bash
# Builds the image `girder:local` (or $GIRDER_IMAGE) offline, FROM scratch,
# from a girder binary built on this machine: no base image is pulled.
#
#   scripts/docker-image.sh [BINARY]
#
# BINARY defaults to $CARGO_TARGET_DIR (or ./target)/release/girder when it
# exists, else .../debug/girder. The image holds the binary, the shared
# libraries it links (as ldd lists them) and the dynamic loader, glibc's
# name-service modules, the host's CA certificates (when present), minimal
# /etc/passwd, /etc/group and /etc/nsswitch.conf (hosts: files dns), and
# deploy/docker/girder.conf as /etc/girder/girder.conf. It runs as the
# user girder (uid 1000), keeps node.data_dir on the /data volume, and
# starts `girder start -c /etc/girder/girder.conf`, as the multi-stage
# Dockerfile at the root does.
set -euo pipefail
cd "$(dirname "$0")/.."

image="${GIRDER_IMAGE:-girder:local}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
if [[ $# -ge 1 ]]; then
    bin="$1"
elif [[ -x "$target_dir/release/girder" ]]; then
    bin="$target_dir/release/girder"
else
    bin="$target_dir/debug/girder"
fi
if [[ ! -x "$bin" ]]; then
    echo "docker-image.sh: no girder binary at $bin (cargo build -p girder first)" >&2
    exit 1
fi
case "$bin" in
    */release/*) profile=release ;;
    */debug/*) profile=debug ;;
    *) profile="given" ;;
esac
echo "docker-image.sh: building $image from the $profile binary $bin"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc/girder" "$root/etc/ssl/certs" "$root/tmp" "$ctx/data"

# Copies a file to the same path under the root, following symlinks.
put() {
    mkdir -p "$root$(dirname "$1")"
    cp -L "$1" "$root$1"
}

cp -L "$bin" "$root/usr/local/bin/girder"
# Every library ldd resolves (name => /path), and the loader (a bare path).
while read -r lib; do
    put "$lib"
done < <(ldd "$bin" | awk '/=> \// { print $3 } $1 ~ /^\// { print $1 }')
# getaddrinfo loads these by name from nsswitch.conf (in glibc >= 2.34 they
# are built into libc and the files are stubs; copying them is harmless).
libdir="$(dirname "$(ldd "$bin" | awk '/libc\.so/ { print $3 }')")"
for nss in libnss_files.so.2 libnss_dns.so.2 libresolv.so.2; do
    if [[ -e "$libdir/$nss" ]]; then
        put "$libdir/$nss"
    fi
done
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
else
    echo "docker-image.sh: no /etc/ssl/certs/ca-certificates.crt on this host; the image has no CA certificates" >&2
fi
printf 'root:x:0:0:root:/:/sbin/nologin\ngirder:x:1000:1000:girder:/data:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\ngirder:x:1000:\n' >"$root/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
cp deploy/docker/girder.conf "$root/etc/girder/girder.conf"
chmod 1777 "$root/tmp"

cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
COPY --chown=1000:1000 data/ /data/
ENV PATH=/usr/local/bin
USER 1000:1000
WORKDIR /data
VOLUME ["/data"]
EXPOSE 1883 4370 18083
ENTRYPOINT ["girder"]
CMD ["start", "-c", "/etc/girder/girder.conf"]
DOCKERFILE

# The classic builder: BuildKit may be missing and is not needed here.
if ! DOCKER_BUILDKIT=0 docker build --quiet --tag "$image" "$ctx" >"$ctx/build.log" 2>&1; then
    cat "$ctx/build.log" >&2
    exit 1
fi
docker run --rm "$image" --version
echo "docker-image.sh: built $image ($(docker image inspect --format '{{.Size}}' "$image") bytes)"
