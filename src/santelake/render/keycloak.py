"""The Keycloak realm, as the JSON Keycloak imports at start.

Users and their passwords are never part of the realm file: dev users are created through
the admin API with generated passwords (see runtime/keycloak.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

CLI_CLIENT = "santelake-cli"
# A confidential client for the Helm chart's `helm test` only: the client credentials grant gives
# its service-account user a token. Its secret is a placeholder Keycloak resolves at import.
SMOKE_TEST_CLIENT = "santelake-helm-test"
ACCESS_TOKEN_SECONDS = 300


def realm(name: str, audience: str, groups: Sequence[str], *, allow_password_grant: bool,
          smoke_test_secret_env: str | None = None) -> dict[str, object]:
    """The realm; ``allow_password_grant`` is for local dev and tests only.

    ``smoke_test_secret_env`` adds the smoke-test client, its secret read at import from that
    environment variable; without it the realm is unchanged.
    """
    audience_mapper = {
        "name": f"audience-{audience}",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "config": {
            "included.custom.audience": audience,
            "access.token.claim": "true",
            "id.token.claim": "false",
            "introspection.token.claim": "true",
        },
    }
    clients: list[dict[str, object]] = [
        {
            # The resource server: tokens name it in `aud`; nobody logs in to it.
            "clientId": audience,
            "name": "Trino",
            "enabled": True,
            "publicClient": False,
            "bearerOnly": True,
            "standardFlowEnabled": False,
            "implicitFlowEnabled": False,
            "directAccessGrantsEnabled": False,
            "serviceAccountsEnabled": False,
            "protocol": "openid-connect",
        },
        {
            "clientId": CLI_CLIENT,
            "name": "santelake CLI, notebooks, JDBC tools",
            "enabled": True,
            "publicClient": True,
            "standardFlowEnabled": False,
            "implicitFlowEnabled": False,
            "directAccessGrantsEnabled": allow_password_grant,
            "serviceAccountsEnabled": False,
            "protocol": "openid-connect",
            "attributes": {"oauth2.device.authorization.grant.enabled": "true"},
            "protocolMappers": [audience_mapper],
        },
    ]
    if smoke_test_secret_env:
        clients.append({
            "clientId": SMOKE_TEST_CLIENT,
            "name": "helm test: runs SELECT 1 as its service account",
            "enabled": True,
            "publicClient": False,
            "clientAuthenticatorType": "client-secret",
            "secret": f"${{{smoke_test_secret_env}}}",
            "standardFlowEnabled": False,
            "implicitFlowEnabled": False,
            "directAccessGrantsEnabled": False,
            "serviceAccountsEnabled": True,
            "protocol": "openid-connect",
            "protocolMappers": [audience_mapper],
        })
    return {
        "realm": name,
        "enabled": True,
        "sslRequired": "all",
        "registrationAllowed": False,
        "resetPasswordAllowed": False,
        "rememberMe": False,
        "loginWithEmailAllowed": False,
        "bruteForceProtected": True,
        "accessTokenLifespan": ACCESS_TOKEN_SECONDS,
        "oauth2DeviceCodeLifespan": 600,
        "oauth2DevicePollingInterval": 5,
        "groups": [{"name": g} for g in sorted(groups)],
        "clients": clients,
    }


def realm_json(name: str, audience: str, groups: Sequence[str], *, allow_password_grant: bool,
               smoke_test_secret_env: str | None = None) -> str:
    data = realm(name, audience, groups, allow_password_grant=allow_password_grant,
                 smoke_test_secret_env=smoke_test_secret_env)
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
