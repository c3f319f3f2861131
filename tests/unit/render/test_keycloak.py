from typing import Any

from santelake.render.keycloak import CLI_CLIENT, realm


def _client(data: dict[str, Any], client_id: str) -> dict[str, Any]:
    clients: list[dict[str, Any]] = data["clients"]  # type: ignore[assignment]
    return next(c for c in clients if c["clientId"] == client_id)


def test_cli_client_uses_device_flow_and_puts_trino_in_audience() -> None:
    data = realm("santelake", "trino", ["researchers"], allow_password_grant=False)
    cli = _client(data, CLI_CLIENT)
    assert cli["publicClient"] is True
    assert cli["attributes"]["oauth2.device.authorization.grant.enabled"] == "true"
    assert cli["directAccessGrantsEnabled"] is False
    mapper = cli["protocolMappers"][0]
    assert mapper["protocolMapper"] == "oidc-audience-mapper"
    assert mapper["config"]["included.custom.audience"] == "trino"
    assert data["sslRequired"] == "all"


def test_password_grant_only_when_asked_and_no_users_in_realm() -> None:
    data = realm("santelake", "trino", [], allow_password_grant=True)
    assert _client(data, CLI_CLIENT)["directAccessGrantsEnabled"] is True
    assert "users" not in data
    trino = _client(data, "trino")
    assert trino["bearerOnly"] is True and trino["directAccessGrantsEnabled"] is False
