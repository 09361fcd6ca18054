#!/usr/bin/env bash
# Writes the tree of REV (default HEAD) of the git directory GIT_DIR into OUT_DIR, blob
# by blob: a mirror that lacks some large blobs (as `fetch` gives them) still yields every
# file it has; the missing ones are listed on stderr. For a KubeStellar source checkout to
# build bench/kubestellar/ks-binding against.
#
#   bench/kubestellar/extract-tree.sh /work/.mirror/kubestellar+kubestellar/repo /tmp/ks-src
set -euo pipefail
git_dir=${1:?usage: extract-tree.sh GIT_DIR OUT_DIR [REV]}
out=${2:?usage: extract-tree.sh GIT_DIR OUT_DIR [REV]}
rev=${3:-HEAD}
mkdir -p "$out"
missing=0
total=0
while IFS= read -r -d '' entry; do
  meta=${entry%%$'\t'*}
  path=${entry#*$'\t'}
  read -r mode type sha <<<"$meta"
  [[ $type == blob ]] || continue
  total=$((total + 1))
  mkdir -p "$out/$(dirname "$path")"
  if [[ $mode == 120000 ]]; then
    ln -sfn "$(git --git-dir="$git_dir" cat-file blob "$sha")" "$out/$path" 2>/dev/null || true
  elif ! git --git-dir="$git_dir" cat-file blob "$sha" >"$out/$path" 2>/dev/null; then
    rm -f "$out/$path"
    echo "missing from the mirror: $path" >&2
    missing=$((missing + 1))
  fi
  if (( total % 500 == 0 )); then echo "extract-tree: $total files" >&2; fi
done < <(git --git-dir="$git_dir" ls-tree -r -z "$rev")
echo "extract-tree: wrote $((total - missing)) of $total files of $rev into $out ($missing missing)" >&2
