#!/usr/bin/env bash
# Builds Bindery's container image with podman on a machine that reaches no image
# registry, and checks it: the two base images of the Dockerfile are made from Debian
# packages (mmdebstrap) and this machine's Rust toolchain, the image is built from the
# Dockerfile, then run as its non-root user to replay the seed's example and compare the
# Bindings with the expected ones.
#
# Usage: scripts/image.sh [TAG]   (default bindery:<version>; needs root, podman,
#        mmdebstrap and Debian's mirror: apt-get install podman mmdebstrap)
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
TAG="${1:-bindery:$VERSION}"
SUITE="${DEBIAN_SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
TOOLCHAIN="$(rustc --print sysroot)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# This machine's cgroups are a v1/v2 hybrid, which crun refuses: builds use chroot
# isolation and runs no cgroups (BUILD_ISOLATION=oci RUN_FLAGS= where cgroups work).
RUN_FLAGS="${RUN_FLAGS---cgroups=disabled}"

log() { printf '[image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if ! podman image exists localhost/bindery-runtime-base:"$SUITE"; then
	log "runtime base: libc6 and libgcc-s1 of Debian $SUITE (extracted, no shell), a nonroot user"
	mmdebstrap --variant=extract --include=libc6,libgcc-s1,base-files,netbase \
		--customize-hook='echo "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin" >> "$1/etc/passwd"' \
		--customize-hook='echo "nonroot:x:65532:" >> "$1/etc/group"' \
		--customize-hook='mkdir -p "$1/home/nonroot" "$1/tmp" && chown 65532:65532 "$1/home/nonroot" && chmod 1777 "$1/tmp"' \
		"$SUITE" "$WORK/runtime.tar" "$MIRROR"
	podman import "$WORK/runtime.tar" localhost/bindery-runtime-base:"$SUITE" >/dev/null
fi

if ! podman image exists localhost/bindery-rust-base:"$SUITE"; then
	log "build base: Debian $SUITE with gcc, and the Rust toolchain of this machine ($TOOLCHAIN)"
	mmdebstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates \
		--customize-hook="mkdir -p \"\$1/usr/local/rust\" && cp -a \"$TOOLCHAIN/.\" \"\$1/usr/local/rust/\"" \
		"$SUITE" "$WORK/rust.tar" "$MIRROR"
	podman import \
		--change 'ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV CARGO_HOME=/usr/local/cargo' \
		"$WORK/rust.tar" localhost/bindery-rust-base:"$SUITE" >/dev/null
fi

log "building $TAG from the Dockerfile (release build inside the build stage)"
# The build stage downloads crates through this machine's network: it gets the
# machine's trust store (which may hold a proxy's CA).
podman build --network host --isolation "${BUILD_ISOLATION:-chroot}" \
	--volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
	--build-arg RUST_IMAGE=localhost/bindery-rust-base:"$SUITE" \
	--build-arg RUNTIME_IMAGE=localhost/bindery-runtime-base:"$SUITE" \
	-t "$TAG" .

log "checking $TAG: who it runs as, and the seed's example replayed inside it"
user="$(podman image inspect --format '{{.Config.User}}' "$TAG")"
[ "$user" = "65532:65532" ] || { log "ERROR: the image runs as '$user', not 65532:65532"; exit 1; }
# Through the container runtime if this machine lets it start containers; else (a
# sandbox that refuses setrlimit, say) the image's own file system as a chroot, as
# that user: its binary with only the image's libraries.
if podman run --rm --network none $RUN_FLAGS -v "$PWD/examples:/examples:ro" "$TAG" \
	replay /examples/nginx.jsonl --dump-bindings - >"$WORK/out.json" 2>"$WORK/run.err"; then
	how="podman run"
else
	log "podman run failed ($(tail -1 "$WORK/run.err")); checking in a chroot of the image instead"
	mkdir -p "$WORK/root"
	cid="$(podman create "$TAG")"
	podman export "$cid" | tar -x -C "$WORK/root"
	podman rm "$cid" >/dev/null
	chmod 755 "$WORK/root"
	mkdir -p "$WORK/root/examples" && cp examples/nginx.jsonl "$WORK/root/examples/"
	chroot --userspec=65532:65532 "$WORK/root" /usr/local/bin/bindery \
		replay /examples/nginx.jsonl --dump-bindings - >"$WORK/out.json"
	how="a chroot of the image as 65532:65532"
fi
python3 - "$WORK/out.json" examples/nginx.bindings.json <<'PY'
import json, sys
got, want = (json.load(open(p)) for p in sys.argv[1:3])
assert got == want, f"the image's Bindings differ from {sys.argv[2]}"
PY
size="$(podman image inspect --format '{{.Size}}' "$TAG")"
log "ok ($how): $TAG runs as 65532:65532 and replays examples/nginx.jsonl to examples/nginx.bindings.json; $((size / 1024 / 1024)) MiB"
