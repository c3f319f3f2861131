"""The chart, rendered for each named scenario and checked object by object, without a cluster."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from santelake.render import helm as chart
from tests.unit.helm.conftest import KUBE_VERSION, SCENARIOS, Rendered, run_helm, scenario_file, template_args

Render = Callable[[str], Rendered]


def test_generated_files_are_up_to_date() -> None:
    assert chart.stale_files(chart.CHART_DIR) == [], "run `santelake render` and commit the result"


def test_helm_lint_is_clean(helm: Path) -> None:
    for name in SCENARIOS:
        result = run_helm(helm, ["lint", "--strict", "--kube-version", KUBE_VERSION, str(chart.CHART_DIR),
                                 "-f", str(scenario_file(name))])
        assert result.returncode == 0, f"helm lint ({name}):\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_object_is_valid_kubernetes(render: Render, scenario: str) -> None:
    for document in render(scenario).documents:
        try:
            kubernetes_validate.validate(document, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{document['kind']} {document['metadata']['name']}: {exc.message}") from exc


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pods_are_hardened(render: Render, scenario: str) -> None:
    for name, spec in render(scenario).pod_specs():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        # Only the scheduler talks to Kubernetes (the daily policy apply patches one ConfigMap).
        assert spec["automountServiceAccountToken"] is name.endswith("-airflow-scheduler"), name
        for container in spec.get("initContainers", []) + spec["containers"]:
            where = f"{name}/{container['name']}"
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            limits = container["resources"]["limits"]
            requests = container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(limits) and {"cpu", "memory"} <= set(requests), where


def _selected(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_network_is_denied_by_default(render: Render, scenario: str) -> None:
    rendered = render(scenario)
    policies = rendered.of_kind("NetworkPolicy")
    deny = rendered.named("NetworkPolicy", "-default-deny")["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny and "egress" not in deny
    for name, pod_labels, _ in rendered.pods():
        assert _selected(deny["podSelector"]["matchLabels"], pod_labels), f"{name} escapes default-deny"
        own = [p for p in policies if not p["metadata"]["name"].endswith(("-default-deny", "-dns"))
               and _selected(p["spec"]["podSelector"]["matchLabels"], pod_labels)]
        assert own, f"{name} has no NetworkPolicy of its own"


def _ingress_sources(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [peer for rule in policy["spec"]["ingress"] for peer in rule.get("from", [])]


@pytest.mark.parametrize(("scenario", "expected"), [
    # With MinIO the bootstrap Job also connects, as root, to create the buckets and accounts. The audit
    # receiver writes the trail's anchors.
    ("minimal", ["airflow", "audit", "bootstrap", "trino-coordinator", "trino-worker"]),
    ("seaweedfs", ["airflow", "audit", "trino-coordinator", "trino-worker"]),
])
def test_only_trino_ingestion_and_the_audit_receiver_reach_bundled_storage(
        render: Render, scenario: str, expected: list[str]) -> None:
    storage = render(scenario).named("NetworkPolicy", "-objectstorage")
    allowed = {json.dumps(p["podSelector"]["matchLabels"], sort_keys=True) for p in _ingress_sources(storage)}
    components = sorted(json.loads(a).get("app.kubernetes.io/component", "airflow") for a in allowed)
    assert components == expected
    assert storage["spec"]["egress"] == []


def test_researchers_reach_only_trino_and_keycloak_https(render: Render) -> None:
    rendered = render("production")
    researcher = {"ipBlock": {"cidr": "10.50.0.0/16"}}
    reachable = sorted((p["metadata"]["name"], port["port"]) for p in rendered.of_kind("NetworkPolicy")
                       for rule in p["spec"].get("ingress", []) if researcher in rule.get("from", [])
                       for port in rule["ports"])
    assert reachable == [("santelake-keycloak", 8443), ("santelake-trino-coordinator", 8443)]
    # Trino's internal port answers Trino's nodes only (the coordinator announces itself to its own discovery).
    coordinator = rendered.named("NetworkPolicy", "-trino-coordinator")
    internal = [r for r in coordinator["spec"]["ingress"] if r["ports"] == [{"protocol": "TCP", "port": 8080}]]
    assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in internal[0]["from"]] == [
        "trino-worker", "trino-coordinator"]


SECRET_KEY = re.compile(r"(password|secret|access-key|secret-key)", re.IGNORECASE)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_secret_value_in_a_config_map(render: Render, scenario: str) -> None:
    rendered = render(scenario)
    assert rendered.of_kind("Secret") == [], "the chart never makes Secrets: operators provide them"
    for config_map in rendered.of_kind("ConfigMap"):
        for key, text in (config_map.get("data") or {}).items():
            if not key.endswith(".properties"):
                continue
            for line in text.splitlines():
                name, _, value = line.partition("=")
                if SECRET_KEY.search(name):
                    where = f"{config_map['metadata']['name']}/{key}: {name}"
                    assert re.fullmatch(r"\$\{ENV:[A-Z0-9_]+\}", value), where
    for name, spec in rendered.pod_specs():
        for container in spec.get("initContainers", []) + spec["containers"]:
            for env in container.get("env", []):
                if SECRET_KEY.search(env["name"]) and "value" in env:
                    assert "$(" in env["value"] or env["name"].endswith("_FILE"), f"{name}: {env['name']} has a value"


def _images(rendered: Rendered) -> set[str]:
    return {c["image"] for _, spec in rendered.pod_specs() for c in spec.get("initContainers", []) + spec["containers"]}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_images_listing_matches_the_chart(render: Render, scenario: str) -> None:
    values = chart.load_values(chart.CHART_DIR, [scenario_file(scenario)])
    assert {i.reference for i in chart.images(values)} == _images(render(scenario))


def test_every_image_from_the_configured_registry_by_digest(render: Render) -> None:
    images = _images(render("production"))
    assert images and all(i.startswith("registry.santelake-site.example/") for i in images), images
    digested = {i for i in images if "@sha256:" in i}
    assert {i.split("/")[-1].split(":")[0] for i in digested} == {"santelake", "trino", "keycloak"}


def test_image_versions_are_the_runtime_versions() -> None:
    from santelake.runtime.artifacts import KEYCLOAK, MINIO_VERSION, TRINO_SERVER

    values = chart.load_values(chart.CHART_DIR)
    assert values["images"]["trino"]["tag"] == TRINO_SERVER.version
    assert values["images"]["keycloak"]["tag"] == KEYCLOAK.version
    assert values["images"]["minio"]["tag"] == MINIO_VERSION


def test_workers_scale_and_have_a_disruption_budget(render: Render) -> None:
    rendered = render("workers")
    assert rendered.named("Deployment", "-trino-worker")["spec"]["replicas"] == 6
    assert rendered.named("PodDisruptionBudget", "-trino-worker")["spec"]["maxUnavailable"] == 2


def test_tls_from_provided_secrets(render: Render) -> None:
    rendered = render("tls")
    coordinator = rendered.named("Deployment", "-trino-coordinator")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in coordinator["volumes"]}
    assert volumes["server-tls"]["secret"]["secretName"] == "santelake-trino-public-tls"
    assert volumes["jwks-ca"]["secret"]["secretName"] == "santelake-keycloak-public-tls"
    keycloak = rendered.named("StatefulSet", "-keycloak")["spec"]["template"]["spec"]
    assert {v["name"]: v for v in keycloak["volumes"]}["tls"]["secret"]["secretName"] == (
        "santelake-keycloak-public-tls")
    env = {e["name"]: e.get("value") for e in coordinator["containers"][0]["env"]}
    assert env[chart.ENV_ISSUER] == "https://login.santelake-site.example/realms/santelake"


def test_external_services_are_used_and_bundled_ones_absent(render: Render) -> None:
    rendered = render("production")
    assert not [d for d in rendered.documents if d["metadata"]["name"].endswith(("-postgresql", "-minio"))]
    env = {e["name"]: e.get("value") for e in
           rendered.named("Deployment", "-trino-coordinator")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[chart.ENV_S3_ENDPOINT] == "https://s3.santelake-site.example:7480"
    assert env[chart.ENV_CATALOG_JDBC_URL].startswith("jdbc:postgresql://pg.santelake-site.example:5432/santelake_catalog?sslmode=verify-full")


def test_seaweedfs_runs_without_telemetry(render: Render) -> None:
    store = render("seaweedfs").named("StatefulSet", "-seaweedfs")["spec"]["template"]["spec"]["containers"][0]
    assert "-master.telemetry=false" in store["args"]


REQUIRED = [
    ("minimal", "tls.existingSecret"),
    ("minimal", "secrets.trinoSharedSecret"),
    ("minimal", "secrets.catalogDatabase"),
    ("minimal", "secrets.keycloakAdmin"),
    ("minimal", "secrets.trinoStorage"),
    ("minimal", "secrets.airflow"),
    ("minimal", "secrets.airflowClient"),
    ("minimal", "secrets.trinoOAuth2"),
    ("minimal", "secrets.pseudonymisationKey"),
    ("minimal", "secrets.audit"),
    ("minimal", "secrets.auditStorage"),
    ("production", "audit.databaseAdmin.existingSecret"),
    ("minimal", "postgresql.bundledServer.superuserSecret"),
    ("minimal", "objectStorage.minio.rootSecret"),
    ("seaweedfs", "objectStorage.seaweedfs.s3ConfigSecret"),
    ("helmtest", "helmTest.serviceAccountClient.existingSecret"),
]


@pytest.mark.parametrize(("scenario", "value"), REQUIRED)
def test_a_missing_secret_fails_naming_it(helm: Path, scenario: str, value: str) -> None:
    result = run_helm(helm, template_args([scenario_file(scenario)], [f"{value}="]))
    assert result.returncode != 0
    assert f"{value} is required" in result.stderr, result.stderr


@pytest.mark.parametrize("value", ["postgresql.external.networkPolicyPeers",
                                   "objectStorage.external.networkPolicyPeers"])
def test_external_service_without_network_peers_fails(helm: Path, value: str) -> None:
    result = run_helm(helm, [*template_args([scenario_file("production")]), "--set-json", f"{value}=[]"])
    assert result.returncode != 0 and f"{value} is required" in result.stderr, result.stderr


def test_unknown_value_is_refused(helm: Path) -> None:
    result = run_helm(helm, template_args([scenario_file("minimal")], ["trino.workers=3"]))
    assert result.returncode != 0 and "workers" in result.stderr


def _schema_objects(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)] if node.get("type") == "object" and "properties" in node else []
    for key, child in node.get("properties", {}).items():
        found += _schema_objects(child, f"{path}.{key}")
    return found


def test_schema_closes_every_object_and_documents_every_value() -> None:
    schema = json.loads((chart.CHART_DIR / "values.schema.json").read_text())
    for path, node in _schema_objects(schema):
        assert node.get("additionalProperties") is False, f"{path or '<root>'} accepts unknown keys"
        for key, child in node["properties"].items():
            assert child.get("description"), f"{path}.{key} has no description"
    lines = (chart.CHART_DIR / "values.yaml").read_text().splitlines()
    for number, line in enumerate(lines):
        # Every value (a key with a value on its line) has its comment right above it.
        if re.match(r"^\s*[A-Za-z][\w-]*: \S", line) and not re.match(r"^\s*(requests|limits):", line):
            documented = lines[number - 1].strip().startswith("#")
            assert documented, f"values.yaml:{number + 1}: {line.strip()} is not documented"


def test_values_and_schema_cover_the_same_keys() -> None:
    schema = json.loads((chart.CHART_DIR / "values.schema.json").read_text())
    values = yaml.safe_load((chart.CHART_DIR / "values.yaml").read_text())

    def walk(value: Any, node: dict[str, Any], path: str) -> None:
        if isinstance(value, dict) and "properties" in node:
            assert set(value) == set(node["properties"]), f"{path}: values {sorted(value)} != schema"
            for key, child in value.items():
                walk(child, node["properties"][key], f"{path}.{key}")

    walk(values, schema, "")


def test_the_scheduler_may_patch_the_policy_and_catalogue_configmaps_and_nothing_else(render: Render) -> None:
    rendered = render("minimal")
    scheduler = rendered.named("Deployment", "-airflow-scheduler")["spec"]["template"]["spec"]
    policy = rendered.named("ConfigMap", "-policy")["metadata"]["name"]
    site = rendered.named("ConfigMap", "-catalogue-site")["metadata"]["name"]
    role = rendered.named("Role", "-policy-apply")
    binding = rendered.named("RoleBinding", "-policy-apply")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"],
                              "resourceNames": [policy, site],
                              "verbs": ["get", "patch"]}]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": scheduler["serviceAccountName"],
                                    "namespace": "lake"}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    env = {e["name"]: e.get("value") for e in scheduler["containers"][0]["env"]}
    assert env["SANTELAKE_POLICY_TARGET"] == f"configmap:lake/{policy}"
    assert env["SANTELAKE_CATALOGUE_TARGET"] == f"configmap:lake/{site}"
    # A whole number of bytes, as the settings read it (helm holds YAML numbers as floats).
    assert env["SANTELAKE_KEY_CACHE_BYTES"] == "2147483648"


def test_the_catalogue_server_holds_no_account_and_reaches_nothing(render: Render) -> None:
    rendered = render("minimal")
    pod = rendered.named("Deployment", "-catalogue")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    [server] = pod["containers"]
    assert [e["name"] for e in server["env"]] == ["HOME"]  # no password, no key, no endpoint
    assert {v["name"]: set(v) - {"name"} for v in pod["volumes"]} == \
        {"tls": {"secret"}, "site": {"configMap"}, "tmp": {"emptyDir"}}
    assert server["command"][:4] == ["santelake", "catalogue", "--serve-folder", "/var/run/santelake/catalogue-site"]
    policy = rendered.named("NetworkPolicy", "-catalogue")["spec"]
    assert policy["egress"] == [] and policy["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8443}]}]



def test_the_cluster_values_pull_exactly_what_infra_images_builds() -> None:
    """`santelake images` with the cluster's values, and what infra/images pushes: the same list."""
    import subprocess

    built = subprocess.run(["bash", str(chart.CHART_DIR.parents[1] / "infra" / "images" / "list"), "127.0.0.1:5000"],
                           capture_output=True, text=True, check=True, timeout=60).stdout.split()
    pulled = [image.reference for image in chart.images(chart.load_values(
        chart.CHART_DIR, [chart.CHART_DIR / "ci" / "cluster-values.yaml"]))]
    assert sorted(pulled) == sorted(built)


@pytest.mark.parametrize("role", ["coordinator", "worker"])
def test_trino_is_ready_once_started_not_once_listening(render: Render, role: str) -> None:
    """/v1/info answers while Trino is still starting (its OAuth 2.0 login is set up last): the probe
    reads its "starting" flag, with the shell the image has."""
    container = render("minimal").named("Deployment", f"-trino-{role}")["spec"]["template"]["spec"]["containers"][0]
    command = container["readinessProbe"]["exec"]["command"]
    assert command[:2] == ["bash", "-c"]
    assert "/dev/tcp/127.0.0.1/8080" in command[2] and "GET /v1/info " in command[2]
    assert "grep -q '\"starting\":false'" in command[2]
    assert container["livenessProbe"]["httpGet"]["path"] == "/v1/info"  # alive while starting
