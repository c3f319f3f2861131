# Shared settings and helpers of infra/cluster/{up,down,selftest,status}: sourced, not run.
# shellcheck shell=bash disable=SC2034

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
. "$here/versions.sh"

cache="${SANTELAKE_CACHE_DIR:-$HOME/.cache/santelake}"
S="${SANTELAKE_CLUSTER_DIR:-/var/lib/santelake-cluster}"    # state: PKI, configs, data, pids, logs
R="/run/santelake-cluster"                                   # runtime: sockets, containerd state
KBIN="$cache/k8s/$KUBE_VERSION/bin"
COREDNS_BIN="$cache/k8s/coredns-$COREDNS_VERSION/coredns"
LOCAL_PATH_BIN="$cache/k8s/local-path-provisioner-$LOCAL_PATH_VERSION/local-path-provisioner"
KUBE_ROUTER_BIN="$cache/k8s/kube-router-$KUBE_ROUTER_VERSION/kube-router"
CRICTL_BIN="$cache/k8s/crictl-$CRICTL_VERSION/crictl"
HELM_BIN="$cache/tools/helm-$HELM_VERSION/helm"

REGISTRY="127.0.0.1:5000"
POD_CIDR="10.244.0.0/16"
NODE_POD_CIDR="10.244.0.0/24"
SERVICE_CIDR="10.96.0.0/16"
API_SERVICE_IP="10.96.0.1"
DNS_SERVICE_IP="10.96.0.10"
BRIDGE="santelake0"
CONTAINERD_SOCK="$R/containerd.sock"
KUBECONFIG_ADMIN="$S/kubeconfig/admin.conf"
# Processes, in start order (down stops them in reverse).
PROCESSES="registry etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy"

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }

# The interface of the default route (the "outer" one pods must never reach) and its address.
outer_if() {
  ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}'
}
node_ip() {
  local dev ip=""
  dev="$(outer_if)"
  [ -n "$dev" ] && ip="$(ip -4 -o addr show dev "$dev" scope global | awk '{print $4}' | cut -d/ -f1 | head -1)"
  [ -n "$ip" ] || ip="$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -1)"
  [ -n "$ip" ] || ip=127.0.0.1
  echo "$ip"
}
node_name() { hostname -s | tr '[:upper:]' '[:lower:]'; }

kubectl_() { "$KBIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

pidfile() { echo "$S/run/$1.pid"; }
# The pid of a process this project started, if it is still that process.
pid_of() {
  local f pid exe
  f="$(pidfile "$1")"
  [ -f "$f" ] || return 1
  pid="$(cat "$f" 2>/dev/null)" && [ -n "$pid" ] || return 1
  exe="$(cat "$S/run/$1.exe" 2>/dev/null)" || return 1
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] || return 1
  echo "$pid"
}
running() { pid_of "$1" >/dev/null; }

# A process that exists and has not exited (a zombie waiting for PID 1 to reap it has).
alive() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]; }

# Stops one process started by up: TERM, then KILL after a grace period.
stop_process() {
  local name="$1" pid i
  pid="$(pid_of "$name")" || { rm -f "$(pidfile "$name")"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
  rm -f "$(pidfile "$name")"
  log "stopped $name (pid $pid)"
}

# RSS of a pid and all its descendants, in KiB and in MiB.
rss_tree_kib() {
  local pid="$1" total k
  total=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  total=${total:-0}
  for k in $(cat /proc/"$pid"/task/*/children 2>/dev/null || true); do
    total=$((total + $(rss_tree_kib "$k")))
  done
  echo "$total"
}
rss_tree_mib() { echo $(( $(rss_tree_kib "$1") / 1024 )); }
