import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from santelake.names import AIRFLOW_CLIENT
from santelake.policy.build import build
from santelake.policy.compile import ROLE_GROUPS
from santelake.policy.model import StaffRole
from santelake.render import keycloak
from santelake.render.keycloak import CLI_CLIENT, realm


def _client(data: dict[str, Any], client_id: str) -> dict[str, Any]:
    clients: list[dict[str, Any]] = data["clients"]  # type: ignore[assignment]
    return next(c for c in clients if c["clientId"] == client_id)


def test_cli_client_uses_device_flow_and_puts_trino_in_audience() -> None:
    data = realm("santelake", "trino", ["researchers", "admins"], airflow_admins="admins", allow_password_grant=False)
    cli = _client(data, CLI_CLIENT)
    assert cli["publicClient"] is True
    assert cli["attributes"]["oauth2.device.authorization.grant.enabled"] == "true"
    assert cli["directAccessGrantsEnabled"] is False
    mapper = cli["protocolMappers"][0]
    assert mapper["protocolMapper"] == "oidc-audience-mapper"
    assert mapper["config"]["included.custom.audience"] == "trino"
    assert data["sslRequired"] == "all"


def test_password_grant_only_when_asked_and_no_users_in_realm() -> None:
    data = realm("santelake", "trino", ["admins"], airflow_admins="admins", allow_password_grant=True)
    assert _client(data, CLI_CLIENT)["directAccessGrantsEnabled"] is True
    # No person: the one user is the audit client's service account, and it has no credentials.
    assert [u["username"] for u in data["users"]] == ["service-account-santelake-audit"]
    assert all("credentials" not in u for u in data["users"])
    trino = _client(data, "trino")
    assert trino["directAccessGrantsEnabled"] is False and trino["serviceAccountsEnabled"] is False


def test_trino_logs_researchers_in_with_the_code_flow_a_secret_and_its_own_callback_only() -> None:
    data = realm("santelake", "trino", ["admins"], airflow_admins="admins", allow_password_grant=False)
    trino = _client(data, "trino")
    assert trino["publicClient"] is False and trino["bearerOnly"] is False
    assert trino["clientAuthenticatorType"] == "client-secret" and trino["secret"] == "${SANTELAKE_TRINO_CLIENT_SECRET}"
    assert trino["standardFlowEnabled"] is True and trino["implicitFlowEnabled"] is False
    assert trino["redirectUris"] == ["${SANTELAKE_TRINO_URL}/oauth2/callback"]
    assert trino["protocolMappers"][0]["config"]["included.custom.audience"] == "trino"
    # Trino's session cannot outlive Keycloak's refresh token: its length is bound to the idle timeout.
    assert data["ssoSessionIdleTimeout"] == 30 * 60


@pytest.mark.parametrize("allow_password_grant", [False, True])
def test_airflow_logs_in_with_the_code_flow_only_and_a_secret_from_the_environment(
        allow_password_grant: bool) -> None:
    client = _client(realm("santelake", "trino", ["admins"], airflow_admins="admins",
                           allow_password_grant=allow_password_grant), AIRFLOW_CLIENT)
    assert client["publicClient"] is False and client["clientAuthenticatorType"] == "client-secret"
    assert client["secret"] == "${SANTELAKE_AIRFLOW_CLIENT_SECRET}"
    assert client["standardFlowEnabled"] is True
    assert client["directAccessGrantsEnabled"] is False and client["implicitFlowEnabled"] is False
    assert client["redirectUris"] == ["${SANTELAKE_AIRFLOW_URL}/auth/login_callback"]
    assert client["attributes"]["post.logout.redirect.uris"] == "${SANTELAKE_AIRFLOW_URL}/auth/logout_callback"


def _authorisation(admins: str) -> dict[str, Any]:
    client = keycloak.airflow_client(admins, secret="s", airflow_url="https://airflow.example")
    settings: dict[str, Any] = client["authorizationSettings"]  # type: ignore[assignment]
    return settings


def test_one_group_is_granted_everything_and_nobody_else_anything() -> None:
    settings = _authorisation("platform_admins")
    # Enforcing: a request no permission covers is denied, so anyone outside the group gets nothing.
    assert settings["policyEnforcementMode"] == "ENFORCING"
    policies = {p["name"]: p for p in settings["policies"]}
    permissions = [p for p in policies.values() if p["type"] in ("scope", "resource")]
    assert len(permissions) == 1
    (admin,) = permissions
    scopes = {s["name"] for s in settings["scopes"]}
    assert set(json.loads(admin["config"]["scopes"])) == scopes
    assert "resources" not in admin["config"]  # every resource
    (policy_name,) = json.loads(admin["config"]["applyPolicies"])
    group = policies[policy_name]
    assert group["type"] == "group" and group["logic"] == "POSITIVE"
    assert json.loads(group["config"]["groups"]) == [{"path": "/platform_admins", "extendChildren": False}]
    assert "groupsClaim" not in group["config"]  # Keycloak's membership now, not a token's claim
    # Every scope a resource names is defined.
    assert {s["name"] for r in settings["resources"] for s in r["scopes"]} <= scopes


def test_the_admin_group_is_the_platform_admins_of_the_policies() -> None:
    compiled = build(day=dt.date(2026, 11, 28)).compiled
    assert compiled.airflow_admins == ROLE_GROUPS[StaffRole.PLATFORM_ADMIN]
    # Allowed and denied, as policies/staff.yaml says: pat administers Airflow, alice does not.
    assert "pat" in compiled.members[compiled.airflow_admins]
    assert "alice" not in compiled.members[compiled.airflow_admins]
    data = realm("santelake", "trino", compiled.groups, airflow_admins=compiled.airflow_admins,
                 allow_password_grant=False)
    policies = _client(data, AIRFLOW_CLIENT)["authorizationSettings"]["policies"]
    paths = [g["path"] for p in policies if p["type"] == "group" for g in json.loads(p["config"]["groups"])]
    assert paths == [f"/{compiled.airflow_admins}"]


def test_an_admin_group_outside_the_realm_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of the realm's groups"):
        realm("santelake", "trino", ["researchers"], airflow_admins="admins", allow_password_grant=False)


# What the installed Airflow and its Keycloak auth manager ask Keycloak about, read in a child
# process (importing airflow sets up its configuration) with a scratch AIRFLOW_HOME.
_ASKED = textwrap.dedent("""
    import json
    from airflow.api_fastapi.app import AUTH_MANAGER_FASTAPI_APP_PREFIX
    from airflow.api_fastapi.auth.managers.base_auth_manager import ExtendedResourceMethod, ResourceMethod
    from airflow.api_fastapi.common.types import MenuItem
    from airflow.providers.keycloak.auth_manager.cli.commands import _get_scopes_to_create
    from airflow.providers.keycloak.auth_manager.resources import KeycloakResource
    from airflow.providers.keycloak.auth_manager.routes.login import login_router
    print(json.dumps({
        "resources": sorted(r.value for r in KeycloakResource),
        "menu": [m.value for m in MenuItem],
        "methods": [m.value for m in ResourceMethod],
        "extended": [m.value for m in ExtendedResourceMethod],
        "scopes": sorted(s["name"] for s in _get_scopes_to_create()),
        "routes": sorted(AUTH_MANAGER_FASTAPI_APP_PREFIX + r.path for r in login_router.routes),
    }))
""")


@pytest.fixture(scope="module")
def asked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    home = tmp_path_factory.mktemp("airflow-home")
    result = subprocess.run([sys.executable, "-c", _ASKED], env={"AIRFLOW_HOME": str(home), "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=300, check=False, cwd=Path(home))
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_realm_defines_every_resource_and_scope_the_auth_manager_asks_for(asked: dict[str, list[str]]) -> None:
    """An undefined resource or scope makes Keycloak answer 400, and Airflow a 500."""
    assert sorted(keycloak.AIRFLOW_RESOURCES) == asked["resources"]
    assert list(keycloak.AIRFLOW_MENU_ITEMS) == asked["menu"]
    assert list(keycloak.AIRFLOW_METHODS) == [*asked["methods"], "LIST"]
    assert [*asked["methods"], keycloak.AIRFLOW_MENU_SCOPE] == asked["extended"]
    scopes = {s["name"] for s in _authorisation("admins")["scopes"]}
    assert scopes == set(asked["scopes"])


def test_the_client_redirects_to_the_auth_managers_own_routes(asked: dict[str, list[str]]) -> None:
    assert {keycloak.AIRFLOW_LOGIN_CALLBACK, keycloak.AIRFLOW_LOGOUT_CALLBACK} <= set(asked["routes"])


def test_lockouts_are_temporary_and_the_chart_starts_keycloak_as_the_local_runtime_does() -> None:
    import yaml

    data = realm("santelake", "trino", ["researchers"], airflow_admins="researchers", allow_password_grant=False)
    assert data["bruteForceProtected"] is True and data["permanentLockout"] is False
    assert int(data["failureFactor"]) > 0 and int(data["maxFailureWaitSeconds"]) <= 900  # type: ignore[call-overload]
    chart = Path(__file__).parents[3] / "helm" / "santelake" / "templates" / "statefulset-keycloak.yaml"
    args_line = next(line for line in chart.read_text().splitlines() if line.strip().startswith("args:"))
    args = yaml.safe_load(args_line.strip().removeprefix("args:"))
    assert args == ["start", "--optimized", "--import-realm", *keycloak.RUNTIME_OPTIONS]
    for name, value in keycloak.RUNTIME_ENV.items():
        assert f"- {{name: {name}, value: {json.dumps(value)}}}" in chart.read_text(), name


def test_the_audit_client_reads_events_and_users_only_and_keycloak_keeps_logins() -> None:
    data = realm("santelake", "trino", ["admins"], airflow_admins="admins", allow_password_grant=False)
    audit = _client(data, "santelake-audit")
    assert audit["serviceAccountsEnabled"] is True and audit["publicClient"] is False
    assert not (audit["standardFlowEnabled"] or audit["directAccessGrantsEnabled"])
    assert audit["secret"] == "${SANTELAKE_AUDIT_CLIENT_SECRET}"
    [account] = data["users"]
    assert account["serviceAccountClientId"] == "santelake-audit"
    assert account["clientRoles"] == {"realm-management": ["view-events", "view-users"]}
    assert data["eventsEnabled"] is True and data["adminEventsEnabled"] is True
    assert "LOGIN_ERROR" in data["enabledEventTypes"]
