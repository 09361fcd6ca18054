#!/usr/bin/env bash
# Builds the mains of bench/kubestellar against the KubeStellar source tree KS_SRC:
#   ks-binding             KubeStellar's binding controller behind a main that takes two
#                          kubeconfigs (the default; what the live_write bench runs);
#   ks-controller-manager  its binding and status controllers together, wired as its
#                          cmd/controller-manager does, behind the same kind of main.
# The Go module proxy refuses github.com/kubestellar/kubestellar, so the tree comes from a
# checkout (or `extract-tree.sh` of a mirror) and a `replace`; KubeStellar's dependencies
# come from the proxy, at the versions of its go.mod.
#
#   bench/kubestellar/build.sh KS_SRC [OUT]                  # ks-binding into OUT (default target/ks-binding)
#   bench/kubestellar/build.sh --main NAME KS_SRC [OUT]      # NAME into OUT (default target/NAME)
#   bench/kubestellar/build.sh --main all KS_SRC [OUT_DIR]   # both, as OUT_DIR/NAME (default target/)
#
# A relative OUT is from the current directory.
set -euo pipefail
usage="usage: build.sh [--main ks-binding|ks-controller-manager|all] KS_SRC [OUT]"
main=ks-binding
if [[ ${1:-} == --main ]]; then
  main=${2:?$usage}
  shift 2
elif [[ ${1:-} == --main=* ]]; then
  main=${1#--main=}
  shift
fi
case $main in
  ks-binding | ks-controller-manager) mains=("$main") ;;
  all) mains=(ks-binding ks-controller-manager) ;;
  *) echo "build.sh: unknown main $main; $usage" >&2; exit 2 ;;
esac
ks_src=$(cd "${1:?$usage}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# Absolute, as the build runs in a temporary directory.
declare -A outs
if [[ $main == all ]]; then
  out_dir=$(realpath -m "${2:-$root/target}")
  for m in "${mains[@]}"; do outs[$m]=$out_dir/$m; done
else
  outs[$main]=$(realpath -m "${2:-$root/target/$main}")
fi
[[ -f $ks_src/go.mod && -d $ks_src/pkg/binding && -d $ks_src/pkg/status ]] || { echo "build.sh: $ks_src is not a KubeStellar source tree" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# One module, a package directory per main.
for m in "${mains[@]}"; do
  mkdir -p "$work/$m"
  cp "$here/$m/main.go" "$work/$m/"
done
# The module's requirements are KubeStellar's own (its go.mod), so that its packages
# build with the versions they were written for.
go_version=$(awk '/^go /{print $2; exit}' "$ks_src/go.mod")
{
  echo "module bindery.bench/kubestellar"
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
for m in "${mains[@]}"; do
  out=${outs[$m]}
  echo "build.sh: building $m (a few minutes the first time)" >&2
  mkdir -p "$(dirname "$out")"
  go build -o "$out" "./$m"
  echo "build.sh: built $out" >&2
done
