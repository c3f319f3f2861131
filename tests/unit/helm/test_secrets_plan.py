"""`santelake secrets` makes every Secret, with every key, that each scenario's pods read."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from santelake.deploy.secrets import GENERATED, SITE_PROVIDED, generated_data, value_at, wanted
from santelake.render.helm import CHART_DIR, load_values
from tests.unit.helm.conftest import SCENARIOS, Rendered, scenario_file


def _read_secrets(rendered: Rendered) -> dict[str, set[str]]:
    """Secret name -> the keys the pods read, from env references and volumes."""
    found: dict[str, set[str]] = {}
    for _, spec in rendered.pod_specs():
        for container in spec.get("initContainers", []) + spec["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    found.setdefault(ref["name"], set()).add(ref["key"])
        for volume in spec.get("volumes", []):
            sources = [volume["secret"]] if "secret" in volume else [
                s["secret"] for s in volume.get("projected", {}).get("sources", []) if "secret" in s]
            for source in sources:
                keys = {item["key"] for item in source.get("items", [])}
                found.setdefault(source["secretName"] if "secretName" in source else source["name"], set()).update(
                    keys)
    return found


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_secret_the_pods_read_is_made_with_its_keys(render: Callable[[str], Rendered], scenario: str) -> None:
    values = load_values(CHART_DIR, [scenario_file(scenario)])
    made = {item.name: set(item.keys) for item in wanted(values)}
    site = {value_at(values, key) for key in SITE_PROVIDED}
    for name, keys in _read_secrets(render(scenario)).items():
        if name in site:
            continue  # the site's own certificates and SeaweedFS's identities: never generated
        assert name in made, f"{scenario}: the pods read Secret {name}, which santelake secrets does not make"
        assert keys <= made[name], f"{scenario}: {name} lacks {sorted(keys - made[name])}"


def test_generated_values_are_never_empty_and_differ_each_time() -> None:
    values = load_values(CHART_DIR, [scenario_file("helmtest")])
    for item in wanted(values):
        if item.values_key not in GENERATED:
            continue
        first, second = generated_data(item), generated_data(item)
        assert all(first.values())
        secret_keys = [k for k in first if k not in ("username", "access-key", "root-user")]
        assert all(first[k] != second[k] for k in secret_keys), item


def test_operators_login_needs_the_keycloak_clients_secret_and_no_password_file() -> None:
    values = load_values(CHART_DIR, [scenario_file("minimal")])
    made = {item.values_key: item.keys for item in wanted(values)}
    assert made["secrets.airflowClient"] == ("client-secret",)
    assert made["secrets.airflow"] == ("fernet-key", "jwt-secret", "api-secret-key")
