#!/usr/bin/env bash
# Smoke test of the envtest control plane: start etcd and kube-apiserver on
# free loopback ports (the same flags the Rust test harness uses, see
# scripts/ENVTEST.md), wait for /readyz, list namespaces, stop both.
#
# Usage: scripts/envtest-smoke.sh   (builds the binaries first if needed)
# Env:   ENVTEST_KEEP=1 keeps the temp dir (logs) after the run.
#        KUBE_APISERVER_BIN and ETCD_BIN, both set: use those binaries
#        instead of running scripts/envtest-binaries.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${KUBE_APISERVER_BIN:-}" ] || [ -z "${ETCD_BIN:-}" ]; then
	eval "$("$ROOT/scripts/envtest-binaries.sh")"
fi

log() { printf '[envtest-smoke %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

for tool in openssl curl python3; do
	command -v "$tool" >/dev/null || { log "ERROR: $tool not found"; exit 1; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/envtest-smoke.XXXXXX")"
ETCD_PID="" APISERVER_PID=""

stop_pid() { # pid name
	local pid="$1" i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	log "$2 did not stop in 10 s, killing"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	stop_pid "$APISERVER_PID" kube-apiserver
	stop_pid "$ETCD_PID" etcd
	if [ "$rc" != 0 ]; then
		log "FAILED (rc=$rc); last log lines:"
		tail -n 30 "$WORK/etcd.log" >&2 2>/dev/null || true
		tail -n 60 "$WORK/kube-apiserver.log" >&2 2>/dev/null || true
	fi
	if [ "${ENVTEST_KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Ask the kernel for free ports (bind to :0), all distinct.
read -r ETCD_PORT ETCD_PEER_PORT API_PORT < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(3):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*[s.getsockname()[1] for s in socks])
EOF
)
ETCD_URL="http://127.0.0.1:$ETCD_PORT"
API_URL="https://127.0.0.1:$API_PORT"
log "ports: etcd=$ETCD_PORT peer=$ETCD_PEER_PORT apiserver=$API_PORT; dir=$WORK"

# --- etcd --------------------------------------------------------------------
mkdir -p "$WORK/etcd-data"
chmod 700 "$WORK/etcd-data"
# --unsafe-no-fsync exists from etcd 3.5 (Debian's 3.4 lacks it). Capture the
# help text first: "etcd --help | grep -q" under pipefail can fail by SIGPIPE.
ETCD_EXTRA=()
ETCD_HELP="$("$ETCD_BIN" --help 2>&1 || true)"
if [[ "$ETCD_HELP" == *--unsafe-no-fsync* ]]; then
	ETCD_EXTRA+=(--unsafe-no-fsync=true)
fi
T0=$(date +%s.%N)
"$ETCD_BIN" \
	--name=envtest \
	--data-dir="$WORK/etcd-data" \
	--listen-client-urls="$ETCD_URL" \
	--advertise-client-urls="$ETCD_URL" \
	--listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
	--initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
	--initial-cluster="envtest=http://127.0.0.1:$ETCD_PEER_PORT" \
	"${ETCD_EXTRA[@]}" \
	>"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!

for i in $(seq 1 200); do
	if [[ "$(curl -fsS --max-time 2 "$ETCD_URL/health" 2>/dev/null || true)" == *'"health":"true"'* ]]; then break; fi
	kill -0 "$ETCD_PID" 2>/dev/null || { log "etcd exited"; exit 1; }
	[ "$i" = 200 ] && { log "etcd not healthy after 20 s"; exit 1; }
	sleep 0.1
done
T1=$(date +%s.%N)
log "etcd healthy after $(python3 -c "print(round($T1-$T0,2))") s"

# --- credentials ---------------------------------------------------------------
mkdir -p "$WORK/certs"
openssl genrsa -out "$WORK/sa.key" 2048 2>/dev/null
openssl rsa -in "$WORK/sa.key" -pubout -out "$WORK/sa.pub" 2>/dev/null
TOKEN="$(openssl rand -hex 32)"
# token,user,uid,"group1,group2"; system:masters is bound to cluster-admin.
printf '%s,envtest-admin,envtest-admin,"system:masters"\n' "$TOKEN" >"$WORK/tokens.csv"

# --- kube-apiserver --------------------------------------------------------------
T2=$(date +%s.%N)
"$KUBE_APISERVER_BIN" \
	--etcd-servers="$ETCD_URL" \
	--bind-address=127.0.0.1 \
	--advertise-address=127.0.0.1 \
	--endpoint-reconciler-type=none \
	--secure-port="$API_PORT" \
	--cert-dir="$WORK/certs" \
	--service-cluster-ip-range=10.0.0.0/24 \
	--allow-privileged=true \
	--disable-admission-plugins=ServiceAccount \
	--authorization-mode=RBAC \
	--token-auth-file="$WORK/tokens.csv" \
	--service-account-issuer="$API_URL/" \
	--service-account-key-file="$WORK/sa.pub" \
	--service-account-signing-key-file="$WORK/sa.key" \
	>"$WORK/kube-apiserver.log" 2>&1 &
APISERVER_PID=$!

AUTH=(-H "Authorization: Bearer $TOKEN")
for i in $(seq 1 1200); do
	if [ "$(curl -ksS --max-time 2 "${AUTH[@]}" "$API_URL/readyz" 2>/dev/null)" = ok ]; then break; fi
	kill -0 "$APISERVER_PID" 2>/dev/null || { log "kube-apiserver exited"; exit 1; }
	[ "$i" = 1200 ] && { log "kube-apiserver not ready after 120 s"; exit 1; }
	sleep 0.1
done
T3=$(date +%s.%N)
log "kube-apiserver /readyz ok after $(python3 -c "print(round($T3-$T2,2))") s"

# --- checks ----------------------------------------------------------------------
NS_JSON="$(curl -ksSf "${AUTH[@]}" "$API_URL/api/v1/namespaces")"
NAMES="$(printf '%s' "$NS_JSON" | python3 -c 'import json,sys; print(" ".join(i["metadata"]["name"] for i in json.load(sys.stdin)["items"]))')"
log "namespaces: $NAMES"
case " $NAMES " in
*" default "*) ;;
*) log "namespace 'default' missing"; exit 1 ;;
esac

# Without the token the request is anonymous (system:anonymous): RBAC must
# refuse it (403; 401 if --anonymous-auth=false is added).
CODE="$(curl -ks -o /dev/null -w '%{http_code}' "$API_URL/api/v1/namespaces")"
case "$CODE" in
401 | 403) ;;
*) log "anonymous request got HTTP $CODE, want 401/403"; exit 1 ;;
esac

VERSION="$(curl -ksSf "${AUTH[@]}" "$API_URL/version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["gitVersion"])')"
log "server version: $VERSION"

T4=$(date +%s.%N)
stop_pid "$APISERVER_PID" kube-apiserver
APISERVER_PID=""
stop_pid "$ETCD_PID" etcd
ETCD_PID=""
T5=$(date +%s.%N)
log "stopped both in $(python3 -c "print(round($T5-$T4,2))") s"
ETCD_V="$("$ETCD_BIN" --version)"
echo "envtest smoke: ok (kube-apiserver $VERSION, ${ETCD_V%%$'\n'*}, etcd flags: ${ETCD_EXTRA[*]:-none})"
