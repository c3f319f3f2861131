# Versions of everything infra/cluster builds or deploys; the cache is keyed by them.
# shellcheck shell=bash disable=SC2034
KUBE_VERSION=v1.33.13
KUBE_COMPONENTS="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"
PAUSE_VERSION=3.10
COREDNS_VERSION=v1.12.4
LOCAL_PATH_VERSION=v0.0.30
NETPOL_VERSION=v0.8.0
HELM_VERSION=v3.22.0
CRICTL_VERSION=v1.34.0
# NetworkPolicy enforcer: kube-router's firewall (iptables + ipset). kube-network-policies
# needs the nftables `queue` expression, which this kernel lacks (see docs/cluster.md).
KUBE_ROUTER_VERSION=v2.1.0
