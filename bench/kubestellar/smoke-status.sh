#!/usr/bin/env bash
# Smoke run of KubeStellar's status controller (bench/kubestellar/ks-controller-manager:
# its binding and status controllers, wired as its controller-manager wires them) against
# real servers: one etcd and two kube-apiservers (WDS and ITS, on loopback ports, in a temp
# dir), no transport and no OCM agents. The script plays the OCM status add-on by hand:
#
#   ITS: the ManagedCluster and WorkStatus CRDs, ManagedCluster cluster1, namespace cluster1;
#   WDS: namespace demo, Deployment demo/nginx, a BindingPolicy selecting it for cluster1
#        with wantSingletonReportedState: true (the controller-manager installs
#        KubeStellar's CRDs itself);
#   then, in ITS namespace cluster1, a WorkStatus for demo/nginx as the add-on's agent makes
#   it (name, labels, spec.sourceRef, statusDetails; .status through the status
#   subresource), and checks that the WDS Deployment gets that .status and the label
#   managed-by.kubestellar.io/singletonstatus. Then it changes the WorkStatus's status
#   (the copy follows) and deletes the WorkStatus (status cleared, label removed).
#
# Every write of the controller-manager (its own user), and every WorkStatus write, is in
# the servers' audit logs; the script prints them at the end with their times, verbs,
# subresources, field managers and response codes.
#
#   bench/kubestellar/smoke-status.sh [KS_CONTROLLER_MANAGER]   (default /tmp/ks-controller-manager)
#
# Env: KS_SRC (default /tmp/ks-src): the KubeStellar tree the binary was built from; its
#        go.mod gives the open-cluster-management.io/api version (ManagedCluster CRD, from
#        the Go module cache through `go mod download`) and its core-chart/values.yaml the
#        OCM status add-on version (WorkStatus CRD).
#      OCM_STATUS_ADDON_GIT (default /work/.mirror/kubestellar+ocm-status-addon/repo): a git
#        directory of github.com/kubestellar/ocm-status-addon; the WorkStatus CRD is its
#        chart/crds/crds.yaml at tag v<version> (the Go module proxy refuses that module;
#        `go mod download` is tried first anyway).
#      KS_VERBOSITY (default 5): the controller-manager's -v.
#      SMOKE_KEEP=1 keeps the temp dir (logs, audit logs, kubeconfigs) after a successful run.
#      KUBE_APISERVER_BIN, ETCD_BIN: the binaries (default target/envtest/bin/, else
#        scripts/envtest-binaries.sh builds them).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$here/../.." && pwd)
KS_CM=$(realpath -m "${1:-${KS_CONTROLLER_MANAGER:-/tmp/ks-controller-manager}}")
KS_SRC=${KS_SRC:-/tmp/ks-src}
OCM_STATUS_ADDON_GIT=${OCM_STATUS_ADDON_GIT:-/work/.mirror/kubestellar+ocm-status-addon/repo}
KS_VERBOSITY=${KS_VERBOSITY:-5}
WDS_NAME=wds1

log() { printf '[smoke-status %s] %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in openssl curl python3 kubectl jq go; do
	command -v "$tool" >/dev/null || die "$tool not found"
done
[ -x "$KS_CM" ] || die "$KS_CM is not an executable (build it: bench/kubestellar/build.sh --main ks-controller-manager KS_SRC $KS_CM)"
if [ -z "${KUBE_APISERVER_BIN:-}" ] || [ -z "${ETCD_BIN:-}" ]; then
	if [ -x "$ROOT/target/envtest/bin/kube-apiserver" ] && [ -x "$ROOT/target/envtest/bin/etcd" ]; then
		KUBE_APISERVER_BIN=$ROOT/target/envtest/bin/kube-apiserver
		ETCD_BIN=$ROOT/target/envtest/bin/etcd
	else
		eval "$("$ROOT/scripts/envtest-binaries.sh")"
	fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ks-smoke-status.XXXXXX")
ETCD_PID="" WDS_PID="" ITS_PID="" KS_PID=""

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
	stop_pid "$KS_PID" ks-controller-manager
	stop_pid "$WDS_PID" "kube-apiserver (wds)"
	stop_pid "$ITS_PID" "kube-apiserver (its)"
	stop_pid "$ETCD_PID" etcd
	if [ "$rc" != 0 ]; then
		log "FAILED (rc=$rc); last lines of the controller-manager's log:"
		tail -n 40 "$WORK/ks-controller-manager.log" >&2 2>/dev/null || true
	fi
	if [ "${SMOKE_KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_until SECONDS WHAT COMMAND...: runs COMMAND every 0.1 s until it succeeds.
wait_until() {
	local limit=$1 what=$2
	shift 2
	local deadline=$(($(date +%s) + limit))
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || die "$what: not after ${limit} s"
		sleep 0.1
	done
}

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2-$1:.3f}')"; }

# --- CRDs for the ITS ------------------------------------------------------------------
ocm_api_version=$(awk '$1 == "open-cluster-management.io/api" {print $2; exit}' "$KS_SRC/go.mod" 2>/dev/null || true)
ocm_api_version=${ocm_api_version:-v1.0.0}
addon_version=$(awk -F'"' '/^OCM_STATUS_ADDON_VERSION:/ {print $2; exit}' "$KS_SRC/core-chart/values.yaml" 2>/dev/null || true)
addon_version=v${addon_version:-0.2.0-rc17}
ocm_api_dir=$(go mod download -json "open-cluster-management.io/api@$ocm_api_version" | jq -r '.Dir // empty')
MC_CRD=$ocm_api_dir/cluster/v1/0000_00_clusters.open-cluster-management.io_managedclusters.crd.yaml
[ -f "$MC_CRD" ] || die "no ManagedCluster CRD at $MC_CRD"
# The WorkStatus CRD as the add-on's release installs it: its release workflow runs `make
# chart`, which writes chart/crds/crds.yaml as `kustomize build config/default` gives it,
# i.e. config/crd/bases/control.kubestellar.io_workstatuses.yaml with config/crd/patch.yaml
# (a JSON patch: .status is x-kubernetes-map-type atomic) applied. The chart/crds/crds.yaml
# committed at the tag is older (it lacks statusDetails, which the agent writes), so the
# script takes the base and the patch and applies the patch with kubectl.
WS_CRD=$WORK/workstatuses.crd.yaml
WS_CRD_PATCH=$WORK/workstatuses.crd.patch.yaml
ws_base=config/crd/bases/control.kubestellar.io_workstatuses.yaml
ws_patch=config/crd/patch.yaml
addon_dir=$(go mod download -json "github.com/kubestellar/ocm-status-addon@$addon_version" 2>/dev/null | jq -r '.Dir // empty' || true)
if [ -n "$addon_dir" ] && [ -f "$addon_dir/$ws_base" ] && [ -f "$addon_dir/$ws_patch" ]; then
	cp "$addon_dir/$ws_base" "$WS_CRD"
	cp "$addon_dir/$ws_patch" "$WS_CRD_PATCH"
	ws_crd_source="github.com/kubestellar/ocm-status-addon@$addon_version (module cache) $ws_base + $ws_patch"
else
	git --git-dir="$OCM_STATUS_ADDON_GIT" show "$addon_version:$ws_base" >"$WS_CRD" &&
		git --git-dir="$OCM_STATUS_ADDON_GIT" show "$addon_version:$ws_patch" >"$WS_CRD_PATCH" ||
		die "no WorkStatus CRD: neither the Go module proxy nor $OCM_STATUS_ADDON_GIT has ocm-status-addon $addon_version"
	ws_crd_source="$OCM_STATUS_ADDON_GIT at $addon_version: $ws_base + $ws_patch"
fi
log "ManagedCluster CRD: $MC_CRD"
log "WorkStatus CRD: $ws_crd_source"

# --- etcd and the two apiservers -----------------------------------------------------
read -r ETCD_PORT ETCD_PEER_PORT WDS_PORT ITS_PORT < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(4):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*[s.getsockname()[1] for s in socks])
EOF
)
ETCD_URL=http://127.0.0.1:$ETCD_PORT
log "dir $WORK; ports: etcd=$ETCD_PORT peer=$ETCD_PEER_PORT wds=$WDS_PORT its=$ITS_PORT"

mkdir -p "$WORK/etcd-data"
chmod 700 "$WORK/etcd-data"
ETCD_EXTRA=()
ETCD_HELP="$("$ETCD_BIN" --help 2>&1 || true)"
if [[ "$ETCD_HELP" == *--unsafe-no-fsync* ]]; then ETCD_EXTRA+=(--unsafe-no-fsync=true); fi
"$ETCD_BIN" --name=envtest --data-dir="$WORK/etcd-data" \
	--listen-client-urls="$ETCD_URL" --advertise-client-urls="$ETCD_URL" \
	--listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
	--initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
	--initial-cluster="envtest=http://127.0.0.1:$ETCD_PEER_PORT" \
	"${ETCD_EXTRA[@]}" >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!
etcd_healthy() { [[ "$(curl -fsS --max-time 2 "$ETCD_URL/health" 2>/dev/null)" == *'"health":"true"'* ]]; }
wait_until 20 "etcd healthy" etcd_healthy

# The controller-manager gets a user of its own, so that the audit logs tell its writes.
cat >"$WORK/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Request
    users: ["kubestellar-controller-manager"]
    verbs: [create, update, patch, delete]
  - level: Request
    verbs: [create, update, patch, delete]
    resources:
      - group: control.kubestellar.io
        resources: [workstatuses, workstatuses/status]
  - level: None
EOF
ADMIN_TOKEN=admin-$(openssl rand -hex 16)
KS_TOKEN=ks-$(openssl rand -hex 16)

kubeconfig() { # name url token
	printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: %s\n  cluster:\n    server: %s\n    insecure-skip-tls-verify: true\nusers:\n- name: user\n  user:\n    token: %s\ncontexts:\n- name: %s\n  context:\n    cluster: %s\n    user: user\ncurrent-context: %s\n' \
		"$1" "$2" "$3" "$1" "$1" "$1"
}

start_apiserver() { # name port -> pid in $started_pid
	local name=$1 port=$2 d=$WORK/$1
	mkdir -p "$d/certs"
	openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
	{
		printf '%s,envtest-admin,envtest-admin,"system:masters"\n' "$ADMIN_TOKEN"
		printf '%s,kubestellar-controller-manager,kubestellar-controller-manager,"system:masters"\n' "$KS_TOKEN"
	} >"$d/tokens.csv"
	kubeconfig "$name" "https://127.0.0.1:$port" "$ADMIN_TOKEN" >"$d/admin.kubeconfig"
	kubeconfig "$name" "https://127.0.0.1:$port" "$KS_TOKEN" >"$d/ks.kubeconfig"
	"$KUBE_APISERVER_BIN" \
		--etcd-servers="$ETCD_URL" --etcd-prefix="/$name" \
		--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
		--secure-port="$port" --cert-dir="$d/certs" \
		--service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
		--disable-admission-plugins=ServiceAccount --authorization-mode=RBAC \
		--token-auth-file="$d/tokens.csv" \
		--service-account-issuer="https://127.0.0.1:$port/" \
		--service-account-key-file="$d/sa.key" --service-account-signing-key-file="$d/sa.key" \
		--audit-policy-file="$WORK/audit-policy.yaml" --audit-log-path="$d/audit.log" \
		>"$d/kube-apiserver.log" 2>&1 &
	started_pid=$!
}
start_apiserver wds "$WDS_PORT"
WDS_PID=$started_pid
start_apiserver its "$ITS_PORT"
ITS_PID=$started_pid
ready() { [ "$(curl -ksS --max-time 2 -H "Authorization: Bearer $ADMIN_TOKEN" "https://127.0.0.1:$1/readyz" 2>/dev/null)" = ok ]; }
wait_until 120 "WDS apiserver ready" ready "$WDS_PORT"
wait_until 120 "ITS apiserver ready" ready "$ITS_PORT"
log "etcd and both apiservers ready ($("$KUBE_APISERVER_BIN" --version))"
wds() { kubectl --kubeconfig "$WORK/wds/admin.kubeconfig" "$@"; }
its() { kubectl --kubeconfig "$WORK/its/admin.kubeconfig" "$@"; }

# --- ITS: CRDs, the WEC's inventory entry, its namespace -------------------------------
its apply -f "$MC_CRD" -f "$WS_CRD" >/dev/null
its patch crd workstatuses.control.kubestellar.io --type=json --patch-file "$WS_CRD_PATCH" >/dev/null
its get crd workstatuses.control.kubestellar.io -o json | jq -e '.spec.versions[0].schema.openAPIV3Schema.properties |
	(.status["x-kubernetes-map-type"] == "atomic") and has("statusDetails")' >/dev/null ||
	die "the WorkStatus CRD lacks statusDetails or the atomic .status"
its wait --for=condition=Established --timeout=60s \
	crd/managedclusters.cluster.open-cluster-management.io crd/workstatuses.control.kubestellar.io >/dev/null
its apply -f - >/dev/null <<'EOF'
apiVersion: cluster.open-cluster-management.io/v1
kind: ManagedCluster
metadata:
  name: cluster1
  labels:
    name: cluster1
    location-group: edge
spec:
  hubAcceptsClient: true
---
apiVersion: v1
kind: Namespace
metadata:
  name: cluster1
EOF
log "ITS: CRDs ManagedCluster and WorkStatus, ManagedCluster cluster1, namespace cluster1"

# --- the controller-manager ------------------------------------------------------------
T_KS=$(now)
"$KS_CM" --wds-kubeconfig "$WORK/wds/ks.kubeconfig" --its-kubeconfig "$WORK/its/ks.kubeconfig" \
	--wds-name "$WDS_NAME" -v="$KS_VERBOSITY" >"$WORK/ks-controller-manager.log" 2>&1 &
KS_PID=$!
cm_alive() { kill -0 "$KS_PID" 2>/dev/null || die "ks-controller-manager exited"; }
# The status controller creates namespace kubestellar-report when it starts; "Received
# listers" is logged once the binding controller handed over its listers.
status_started() { cm_alive && wds get namespace kubestellar-report && grep -q '"Received listers"' "$WORK/ks-controller-manager.log"; }
wait_until 120 "the status controller started" status_started
log "controller-manager up after $(elapsed "$T_KS" "$(now)") s: KubeStellar CRDs in the WDS: $(wds get crd -o name | grep -c kubestellar.io), status controller has the listers"

# --- WDS: the workload object and the policy ------------------------------------------
wds apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
  namespace: demo
  labels:
    app.kubernetes.io/name: nginx
spec:
  replicas: 1
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: public.ecr.aws/nginx/nginx:latest
---
apiVersion: control.kubestellar.io/v1alpha1
kind: BindingPolicy
metadata:
  name: nginx-bpolicy
spec:
  clusterSelectors:
  - matchLabels:
      name: cluster1
  downsync:
  - objectSelectors:
    - matchLabels:
        app.kubernetes.io/name: nginx
    wantSingletonReportedState: true
EOF
log "WDS: namespace demo, Deployment demo/nginx, BindingPolicy nginx-bpolicy (wantSingletonReportedState)"
binding_ready() {
	wds get bindings.control.kubestellar.io nginx-bpolicy -o json | jq -e '
		([.spec.destinations[]?.clusterId] == ["cluster1"]) and
		any(.spec.workload.namespaceScope[]?; .resource == "deployments" and .namespace == "demo" and .name == "nginx" and .wantSingletonReportedState == true)'
}
wait_until 60 "Binding nginx-bpolicy names demo/nginx and cluster1" binding_ready
log "Binding nginx-bpolicy: $(wds get bindings.control.kubestellar.io nginx-bpolicy -o json | jq -c '.spec')"
DEPLOY_UID=$(wds -n demo get deployment nginx -o jsonpath='{.metadata.uid}')
sleep 2
log "Deployment before any WorkStatus: labels $(wds -n demo get deployment nginx -o json | jq -c '.metadata.labels') status $(wds -n demo get deployment nginx -o json | jq -c '.status // null')"

# --- ITS: the WorkStatus, as the OCM status add-on's agent writes it --------------------
# Name: <AppliedManifestWork UID>-<group+version, "/" removed>-<kind lower>-<ns>-<name>
# (add-on pkg/util BuildWorkstatusName); no AppliedManifestWork exists here, so a made-up
# UID. Labels: the ManifestWork's (the transport sets originOwnerReferenceBindingKey = the
# Binding's name and originWdsName). The add-on also sets a controller ownerReference to
# the ManifestWork; there is none here (the status controller does not read it).
AMW_UID=$(python3 -c 'import uuid; print(uuid.uuid4())')
WS_NAME=$AMW_UID-appsv1-deployment-demo-nginx
its apply -f - >/dev/null <<EOF
apiVersion: control.kubestellar.io/v1alpha1
kind: WorkStatus
metadata:
  name: $WS_NAME
  namespace: cluster1
  labels:
    transport.kubestellar.io/originWdsName: $WDS_NAME
    transport.kubestellar.io/originOwnerReferenceBindingKey: nginx-bpolicy
spec:
  sourceRef:
    group: apps
    version: v1
    resource: deployments
    kind: Deployment
    name: nginx
    namespace: demo
statusDetails:
  lastCurrencyUpdateTime: "1970-01-01T00:00:00Z"
  lastGeneration: 0
  lastGenerationIsApplied: false
EOF
log "ITS: WorkStatus created (no .status yet): $(its -n cluster1 get workstatus "$WS_NAME" -o json | jq -c '{name: .metadata.name, labels: .metadata.labels, spec, statusDetails}')"
sleep 2
log "Deployment with a WorkStatus without .status: labels $(wds -n demo get deployment nginx -o json | jq -c '.metadata.labels') status $(wds -n demo get deployment nginx -o json | jq -c '.status // null')"

# put_ws_status STATUS_JSON: PUT of the WorkStatus's status subresource (the add-on's
# Status().Update), the whole object with .status replaced.
put_ws_status() {
	its -n cluster1 get workstatus "$WS_NAME" -o json | jq --argjson s "$1" '.status = $s' |
		its replace --subresource=status -f - >/dev/null
}
# A Deployment .status as a WEC's apiserver serves it: zero-valued fields left out (the
# typed API drops them; a WorkStatus status with e.g. unavailableReplicas: 0 would be copied
# as is, read back without it from the WDS, and written again: see README).
wec_status() { # replicas ready generation
	jq -nc --argjson r "$1" --argjson a "$2" --argjson g "$3" '{
		observedGeneration: $g, replicas: $r, updatedReplicas: $r, readyReplicas: $a, availableReplicas: $a}
		+ (if $r > $a then {unavailableReplicas: ($r - $a)} else {} end)
		+ {conditions: [
			{type: "Available", status: (if $a > 0 then "True" else "False" end), reason: "MinimumReplicasAvailable",
			 message: "Deployment has minimum availability.",
			 lastUpdateTime: "2026-01-01T00:00:00Z", lastTransitionTime: "2026-01-01T00:00:00Z"},
			{type: "Progressing", status: "True", reason: "NewReplicaSetAvailable",
			 message: "ReplicaSet \"nginx-5869d7778c\" has successfully progressed.",
			 lastUpdateTime: "2026-01-01T00:00:00Z", lastTransitionTime: "2026-01-01T00:00:00Z"}]}'
}
# status_is STATUS_JSON LABEL(present|absent): the WDS Deployment's .status equals it.
status_is() {
	wds -n demo get deployment nginx -o json | jq -e --argjson s "$1" --arg l "$2" '
		(.status // {}) == $s and
		((.metadata.labels // {}) | has("managed-by.kubestellar.io/singletonstatus")) == ($l == "present")'
}
show_deployment() {
	wds -n demo get deployment nginx -o json --show-managed-fields | jq -c '{resourceVersion: .metadata.resourceVersion, labels: .metadata.labels, status: .status,
		managedFields: [.metadata.managedFields[] | {manager, operation, subresource, time, fields: (.fieldsV1 | keys)}]}'
}

S1=$(wec_status 1 1 1)
T0=$(now)
put_ws_status "$S1"
T1=$(now)
log "ITS: WorkStatus .status written (status subresource): $S1"
wait_until 60 "the WDS Deployment has the WorkStatus's status and the singleton label" status_is "$S1" present
T2=$(now)
log "COPY: the WDS Deployment has the status and the label $(elapsed "$T1" "$T2") s after the WorkStatus status write returned (polled by kubectl)"
sleep 2
log "Deployment read back: $(show_deployment)"
status_is "$S1" present >/dev/null || die "the copy did not stay"

S2=$(wec_status 2 1 1)
T3=$(now)
put_ws_status "$S2"
wait_until 60 "the WDS Deployment follows the WorkStatus's new status" status_is "$S2" present
log "UPDATE: the WDS Deployment follows the WorkStatus's new status after $(elapsed "$T3" "$(now)") s: $(wds -n demo get deployment nginx -o json | jq -c '.status')"

T4=$(now)
its -n cluster1 delete workstatus "$WS_NAME" >/dev/null
wait_until 60 "the WDS Deployment's status cleared and the label removed" status_is '{}' absent
log "DELETE: WorkStatus deleted; after $(elapsed "$T4" "$(now)") s the WDS Deployment has labels $(wds -n demo get deployment nginx -o json | jq -c '.metadata.labels') status $(wds -n demo get deployment nginx -o json | jq -c '.status // null')"
sleep 2

# --- what the audit logs say ------------------------------------------------------------
# One timeline of both servers' audit logs (same host, same clock): every write of the
# controller-manager's user (but its CRD installs) and every WorkStatus write.
audit_lines() { # file space
	jq -r --arg space "$2" 'select(.stage == "ResponseComplete") |
		select(.objectRef.resource != "customresourcedefinitions") |
		[.stageTimestamp, $space, (if .user.username == "kubestellar-controller-manager" then "ks-cm" else "script" end), .verb,
		 (.objectRef.resource + (if .objectRef.subresource then "/" + .objectRef.subresource else "" end)),
		 ((.objectRef.namespace // "") + "/" + (.objectRef.name // "") | if length > 60 then .[:57] + "..." else . end),
		 ("fieldManager=" + ((.requestURI | capture("fieldManager=(?<m>[^&]*)").m) // "-")),
		 (.responseStatus.code | tostring),
		 (if .requestObject.metadata.resourceVersion then "rv=" + .requestObject.metadata.resourceVersion else "" end)] | @tsv' "$1"
}
log "audit timeline (ResponseComplete time, space, writer, verb, resource, ns/name, field manager, code, request's resourceVersion):"
{ audit_lines "$WORK/its/audit.log" ITS; audit_lines "$WORK/wds/audit.log" WDS; } | sort | cut -c12- | column -t -s $'\t' | sed 's/^/    /' >&2
# From each WorkStatus write (ITS) to the controller-manager's last write of the Deployment
# (WDS) before the next WorkStatus write.
python3 - "$WORK/its/audit.log" "$WORK/wds/audit.log" <<'PY' >&2
import json, sys
from datetime import datetime
def entries(path):
    for line in open(path):
        e = json.loads(line)
        if e.get("stage") == "ResponseComplete":
            e["t"] = datetime.fromisoformat(e["stageTimestamp"].replace("Z", "+00:00")).timestamp()
            yield e
ws = [e for e in entries(sys.argv[1]) if e["objectRef"]["resource"] == "workstatuses"]
dep = [e for e in entries(sys.argv[2]) if e["objectRef"]["resource"] == "deployments" and e["user"]["username"] == "kubestellar-controller-manager"]
for i, w in enumerate(ws):
    end = ws[i + 1]["t"] if i + 1 < len(ws) else float("inf")
    after = [d for d in dep if w["t"] <= d["t"] < end]
    what = w["verb"] + " workstatuses" + ("/" + w["objectRef"]["subresource"] if w["objectRef"].get("subresource") else "")
    if after:
        writes = ", ".join(f'{d["verb"]} {d["objectRef"]["resource"]}{"/" + d["objectRef"]["subresource"] if d["objectRef"].get("subresource") else ""} {d["responseStatus"]["code"]} (+{(d["t"] - w["t"]) * 1000:.1f} ms)' for d in after)
        print(f"[smoke-status] after the {what}: {writes}")
    else:
        print(f"[smoke-status] after the {what}: no Deployment write")
PY
echo "smoke-status: ok (ks-controller-manager copied the WorkStatus's status into the WDS Deployment with the singleton label, followed its change, and cleared both when it went)"
