#!/usr/bin/env bash
# The test command: installs what the tests need and is missing, then runs the whole
# test suite (`cargo test --workspace`, extra arguments passed on).
#
#   openssl, curl              service-account keys, readiness checks (Debian packages)
#   chromium, chromium-driver  the dashboard test in a real browser (Debian packages)
#   kube-apiserver, etcd       the envtest control plane, built from Go modules once and
#                              cached under target/envtest/bin (scripts/envtest-binaries.sh)
#   helm                       the chart tests, built from its Go module once, cached
#                              there too (scripts/helm-binary.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in openssl curl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
	echo "== installing ${missing[*]} (Debian packages)"
	sudo_=()
	[ "$(id -u)" -eq 0 ] || sudo_=(sudo)
	"${sudo_[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo_[@]}" apt-get install -y -qq "${missing[@]}"
fi
/usr/bin/chromium --version

echo "== envtest control plane: kube-apiserver and etcd (built once, cached under target/envtest)"
scripts/envtest-binaries.sh
echo "== helm (built once, cached under target/envtest)"
scripts/helm-binary.sh

echo "== cargo test --workspace $*"
cargo test --workspace "$@"
