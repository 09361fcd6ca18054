#!/usr/bin/env bash
# Builds bench/kubestellar/ks-binding (KubeStellar's binding controller behind a main that
# takes two kubeconfigs) against the KubeStellar source tree KS_SRC, into OUT (default
# target/ks-binding). The Go module proxy refuses github.com/kubestellar/kubestellar, so
# the tree comes from a checkout (or `extract-tree.sh` of a mirror) and a `replace`;
# KubeStellar's dependencies come from the proxy, at the versions of its go.mod.
#
#   bench/kubestellar/build.sh /tmp/ks-src
set -euo pipefail
ks_src=$(cd "${1:?usage: build.sh KS_SRC [OUT]}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# Absolute, as the build runs in a temporary directory: a relative OUT is from the
# current directory.
out=$(realpath -m "${2:-$root/target/ks-binding}")
[[ -f $ks_src/go.mod && -d $ks_src/pkg/binding ]] || { echo "build.sh: $ks_src is not a KubeStellar source tree" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/ks-binding/main.go" "$work/"
# The module's requirements are KubeStellar's own (its go.mod), so that its pkg/binding
# builds with the versions it was written for.
go_version=$(awk '/^go /{print $2; exit}' "$ks_src/go.mod")
{
  echo "module bindery.bench/ks-binding"
  echo
  echo "go $go_version"
  echo
  echo "require github.com/kubestellar/kubestellar v0.0.0-00010101000000-000000000000"
  echo
  echo "replace github.com/kubestellar/kubestellar => $ks_src"
  sed -n '/^replace\b/,$p' "$ks_src/go.mod" | grep -v '^replace github.com/kubestellar/kubestellar' || true
} >"$work/go.mod"
cp "$ks_src/go.sum" "$work/go.sum"
cd "$work"
echo "build.sh: resolving KubeStellar's dependencies (Go module proxy)" >&2
GOFLAGS=-mod=mod go mod tidy
echo "build.sh: building ks-binding (a few minutes the first time)" >&2
mkdir -p "$(dirname "$out")"
go build -o "$out" .
echo "build.sh: built $out" >&2
