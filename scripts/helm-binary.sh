#!/usr/bin/env bash
# Make helm available under target/envtest/bin/helm for the chart tests
# (tests/tests/deploy/chart.rs), built from the helm.sh/helm/v3 Go module (Go module proxy)
# the first time (a few minutes on 2 cores) and cached beside the envtest binaries.
#
# Usage: scripts/helm-binary.sh   (stdout: HELM_BIN=<path>; progress on stderr)
# Env: HELM_VERSION (default v3.22.0)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="$ROOT/target/envtest/bin"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
HELM_BIN="$BIN_DIR/helm"

log() { printf '[helm-binary %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [ -x "$HELM_BIN" ] && "$HELM_BIN" version --short 2>/dev/null | grep -q "^${HELM_VERSION}"; then
	log "cached: $("$HELM_BIN" version --short)"
else
	mkdir -p "$BIN_DIR"
	log "building helm $HELM_VERSION from the Go module proxy (go install -p 2)"
	GOBIN="$BIN_DIR" GOFLAGS=-mod=mod go install -p 2 \
		-ldflags "-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
		"helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
	log "built: $("$HELM_BIN" version --short)"
fi
echo "HELM_BIN=$HELM_BIN"
