"""The policy ConfigMap target against the real Kubernetes API, under the chart's RBAC shape: a
service account that may get and patch one ConfigMap, with a token as a pod would have."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from santelake.access.enforce import ConfigMapTarget
from santelake.errors import ServiceError
from tests.cluster.conftest import CLUSTER_DIR, KUBECONFIG, NAMESPACE, Cluster

pytestmark = pytest.mark.cluster


def _apply(cluster: Cluster, manifest: list[dict[str, object]]) -> None:
    subprocess.run([cluster.kubectl, "-n", NAMESPACE, "apply", "-f", "-"], input=yaml.safe_dump_all(manifest),
                   text=True, env=cluster.env, check=True, capture_output=True)


def test_the_target_patches_only_what_changed_and_its_account_may_do_nothing_else(
        cluster: Cluster, tmp_path: Path) -> None:
    if cluster.run("get", "namespace", NAMESPACE, check=False).returncode != 0:
        subprocess.run([cluster.kubectl, "create", "namespace", NAMESPACE], env=cluster.env, check=True)
    name = f"policy-{uuid.uuid4().hex[:6]}"
    _apply(cluster, [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
         "data": {"rules.json": "{}", "groups.txt": "old\n"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-other"}, "data": {"x": "1"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [name],
                    "verbs": ["get", "patch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}]},
    ])
    try:
        # What a pod of that account finds in /var/run/secrets/kubernetes.io/serviceaccount.
        account = tmp_path / "serviceaccount"
        account.mkdir()
        (account / "token").write_text(cluster.run("create", "token", name).stdout.strip())
        (account / "ca.crt").write_text((CLUSTER_DIR / "pki" / "ca.crt").read_text())
        server = urlsplit(yaml.safe_load(KUBECONFIG.read_text())["clusters"][0]["cluster"]["server"])
        env = {"KUBERNETES_SERVICE_HOST": str(server.hostname), "KUBERNETES_SERVICE_PORT": str(server.port)}

        target = ConfigMapTarget(NAMESPACE, name, account_dir=account, env=env)
        files = {"rules.json": json.dumps({"tables": []}), "groups.txt": "old\n"}
        assert target.put(files) == [f"patched rules.json in ConfigMap {NAMESPACE}/{name}"]
        assert cluster.json("get", "configmap", name)["data"] == files
        assert target.put(files) == []  # nothing to change: nothing patched

        with pytest.raises(ServiceError, match="HTTP 403"):
            ConfigMapTarget(NAMESPACE, f"{name}-other", account_dir=account, env=env).put({"x": "2"})
        assert cluster.json("get", "configmap", f"{name}-other")["data"] == {"x": "1"}
    finally:
        for kind in ("rolebinding", "role", "serviceaccount", "configmap"):
            cluster.run("delete", kind, name, "--ignore-not-found", check=False)
        cluster.run("delete", "configmap", f"{name}-other", "--ignore-not-found", check=False)
