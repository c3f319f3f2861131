"""The Keycloak realm, as the JSON Keycloak imports at start.

Users and their passwords are never part of the realm file: dev users are created through
the admin API with generated passwords (see runtime/keycloak.py). What differs between
installations (the Airflow client's secret and Airflow's address) is a ``${VAR}`` placeholder
that Keycloak resolves from its environment at import, so the local runtime and the chart
import the same realm.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from santelake.audit import keycloak as audit
from santelake.names import AIRFLOW_CLIENT

CLI_CLIENT = "santelake-cli"
# Trino's own client: researchers log in to Trino through their browser (Trino's OAuth 2.0, the
# authorization code flow), and every researcher token names it as its audience. Its secret and
# Trino's address (where Keycloak sends the browser back) are placeholders resolved at import.
TRINO_SECRET_ENV = "SANTELAKE_TRINO_CLIENT_SECRET"
TRINO_URL_ENV = "SANTELAKE_TRINO_URL"  # Trino's address as researchers reach it, no trailing slash
TRINO_CALLBACK = "/oauth2/callback"  # Trino's own callback path
# A login lasts while used at least every 30 minutes, at most 10 hours (Keycloak's defaults, written
# down because Trino's session length is bound to them: render.trino.OAUTH2_SESSION).
SSO_IDLE_SECONDS = 1800
SESSIONS: dict[str, object] = {"ssoSessionIdleTimeout": SSO_IDLE_SECONDS, "ssoSessionMaxLifespan": 36_000}
# A confidential client for the Helm chart's `helm test` only: the client credentials grant gives
# its service-account user a token. Its secret is a placeholder Keycloak resolves at import.
SMOKE_TEST_CLIENT = "santelake-helm-test"
ACCESS_TOKEN_SECONDS = 300

# Brute-force detection (the decision and its trade-off: docs/reliability.md, "Logins and password
# guessing"). Temporary lockouts only: a permanent one would let anyone who knows a username lock
# that researcher out until an administrator acts. Ten wrong passwords in a row lock the account
# for a minute, growing by a minute per further ten, at most 15 minutes; two wrong passwords
# within a second lock it for a minute; the count resets 12 hours after the last failure.
BRUTE_FORCE: dict[str, object] = {
    "bruteForceProtected": True,
    "permanentLockout": False,
    "maxTemporaryLockouts": 0,
    "failureFactor": 10,
    "waitIncrementSeconds": 60,
    "maxFailureWaitSeconds": 900,
    "maxDeltaTimeSeconds": 43_200,
    "quickLoginCheckMilliSeconds": 1000,
    "minimumQuickLoginWaitSeconds": 60,
}
# Options of `kc.sh start`, the local runtime's and the chart's. Keycloak 26 by default refuses a
# login of a user while another of the same user is in progress, as `user_temporarily_disabled`:
# 20 parallel logins of one researcher (a notebook's workers, bench/load.py) locked 18 out.
# Allowed here; wrong passwords still count, and two within a second still lock the account.
RUNTIME_OPTIONS = ("--spi-brute-force-protector--default-brute-force-detector--allow-concurrent-requests=true",)
# Keycloak's environment, the local runtime's and the chart's. Keycloak migrates its database with
# Liquibase at every start, and Liquibase (4.30+) then asks config.liquibase.com whether to send
# anonymous usage analytics: the zero-egress test caught its DNS lookup (tests/integration/test_egress.py).
RUNTIME_ENV = {"LIQUIBASE_ANALYTICS_ENABLED": "false"}

# Airflow's Keycloak auth manager (PyPI apache-airflow-providers-keycloak) logs operators in with
# the authorization code flow, then asks Keycloak's authorisation services, for each request,
# whether the user may do METHOD on a RESOURCE (an UMA permission "Resource#METHOD"). Keycloak
# answers from the client's authorisation settings below: every resource and scope the auth
# manager asks about, and one permission granting them all to the members of one group. Anyone
# else is refused everything (enforcing mode: no permission, no access). An unknown resource or
# scope would make Airflow fail with a 500, so these lists are the provider's and Airflow's own,
# checked against the installed packages by tests/unit/render/test_keycloak.py.
AIRFLOW_SECRET_ENV = "SANTELAKE_AIRFLOW_CLIENT_SECRET"
AIRFLOW_URL_ENV = "SANTELAKE_AIRFLOW_URL"  # Airflow's public URL (its api.base_url), no trailing slash
# Where the auth manager's routes are, under Airflow's URL (airflow.api_fastapi.app.AUTH_MANAGER_FASTAPI_APP_PREFIX).
AIRFLOW_LOGIN_CALLBACK = "/auth/login_callback"
AIRFLOW_LOGOUT_CALLBACK = "/auth/logout_callback"
# airflow.providers.keycloak.auth_manager.resources.KeycloakResource
AIRFLOW_RESOURCES = ("AdminView", "Asset", "AssetAlias", "Backfill", "Configuration", "Connection", "Custom",
                     "Dag", "Menu", "Pool", "Team", "Variable", "View")
# airflow.api_fastapi.common.types.MenuItem: each is a resource with the MENU scope only.
AIRFLOW_MENU_ITEMS = ("Required Actions", "Assets", "Audit Log", "Config", "Connections", "Dags", "Deadlines",
                      "Docs", "Jobs", "Plugins", "Pools", "Providers", "Variables", "XComs")
# airflow's ResourceMethod, and LIST, which the auth manager asks for a GET without a resource id.
AIRFLOW_METHODS = ("GET", "POST", "PUT", "DELETE", "LIST")
AIRFLOW_MENU_SCOPE = "MENU"
AIRFLOW_ADMIN_PERMISSION = "Admin"


def placeholder(variable: str) -> str:
    """A value Keycloak reads from its environment when it imports the realm."""
    return f"${{{variable}}}"


def airflow_client(admins: str, *, secret: str, airflow_url: str) -> dict[str, object]:
    """The confidential client Airflow logs operators in with; the members of group ``admins``
    may do everything in Airflow, nobody else anything.

    ``secret`` and ``airflow_url`` are values, or placeholders resolved at import.
    """
    group_policy = f"members of {admins}"
    scopes = [*AIRFLOW_METHODS, AIRFLOW_MENU_SCOPE]
    return {
        "clientId": AIRFLOW_CLIENT,
        "name": "Airflow: operators' login",
        "enabled": True,
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "secret": secret,
        "standardFlowEnabled": True,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        # Keycloak's authorisation services need the client's service account.
        "serviceAccountsEnabled": True,
        "authorizationServicesEnabled": True,
        "protocol": "openid-connect",
        "redirectUris": [airflow_url + AIRFLOW_LOGIN_CALLBACK],
        "webOrigins": [],
        "attributes": {"post.logout.redirect.uris": airflow_url + AIRFLOW_LOGOUT_CALLBACK},
        "authorizationSettings": {
            "allowRemoteResourceManagement": False,
            "policyEnforcementMode": "ENFORCING",
            "decisionStrategy": "UNANIMOUS",
            "scopes": [{"name": scope} for scope in scopes],
            "resources": [
                *({"name": name, "ownerManagedAccess": False, "scopes": [{"name": m} for m in AIRFLOW_METHODS]}
                  for name in AIRFLOW_RESOURCES),
                *({"name": name, "ownerManagedAccess": False, "scopes": [{"name": AIRFLOW_MENU_SCOPE}]}
                  for name in AIRFLOW_MENU_ITEMS),
            ],
            "policies": [
                {
                    "name": group_policy,
                    "type": "group",
                    "logic": "POSITIVE",
                    "decisionStrategy": "UNANIMOUS",
                    # Membership as Keycloak holds it now (no groups claim): a removal applies at once.
                    "config": {"groups": json.dumps([{"path": f"/{admins}", "extendChildren": False}])},
                },
                {
                    # No resource named: the scopes of every resource.
                    "name": AIRFLOW_ADMIN_PERMISSION,
                    "type": "scope",
                    "logic": "POSITIVE",
                    "decisionStrategy": "UNANIMOUS",
                    "config": {"scopes": json.dumps(scopes), "applyPolicies": json.dumps([group_policy])},
                },
            ],
        },
    }


def trino_client(audience: str, *, secret: str, trino_url: str) -> dict[str, object]:
    """The confidential client Trino logs researchers in with (``secret`` and ``trino_url`` are
    values, or placeholders resolved at import). Trino 476 sends no PKCE challenge, so the client
    cannot require one: its secret, known to Trino alone, is what binds the code to Trino."""
    return {
        "clientId": audience,
        "name": "Trino: researchers' login",
        "enabled": True,
        "publicClient": False,
        "bearerOnly": False,
        "clientAuthenticatorType": "client-secret",
        "secret": secret,
        "standardFlowEnabled": True,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": False,
        "consentRequired": False,
        "protocol": "openid-connect",
        "redirectUris": [trino_url + TRINO_CALLBACK],
        "webOrigins": [],
        "protocolMappers": [audience_mapper(audience)],
    }


# The audit receiver's client: it reads the realm's logins and admin changes into the trail, and
# runs the listener's canary query on Trino. Its secret is a placeholder resolved at import.
AUDIT_SECRET_ENV = "SANTELAKE_AUDIT_CLIENT_SECRET"


def audit_client(audience: str, *, secret: str) -> dict[str, object]:
    """The audit receiver's confidential client (service account only; its token is also the canary
    query's identity on Trino, hence the audience)."""
    return {
        "clientId": audit.AUDIT_CLIENT, "name": "santelake audit: copies logins into the audit trail",
        "enabled": True, "publicClient": False, "clientAuthenticatorType": "client-secret", "secret": secret,
        "standardFlowEnabled": False, "implicitFlowEnabled": False, "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": True, "protocol": "openid-connect",
        "protocolMappers": [audience_mapper(audience)],
    }


def audit_service_account() -> dict[str, object]:
    """The audit client's service-account user, allowed to view the realm's events and users, nothing else."""
    return {"username": f"service-account-{audit.AUDIT_CLIENT}", "enabled": True,
            "serviceAccountClientId": audit.AUDIT_CLIENT,
            "clientRoles": {"realm-management": list(audit.AUDIT_CLIENT_ROLES)}}


def audience_mapper(audience: str) -> dict[str, object]:
    """A mapper that names ``audience`` in the access token's ``aud`` (Trino requires it)."""
    return {
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


def realm(name: str, audience: str, groups: Sequence[str], *, airflow_admins: str, allow_password_grant: bool,
          smoke_test_secret_env: str | None = None) -> dict[str, object]:
    """The realm; ``allow_password_grant`` is for local dev and tests only (the CLI client's).

    ``airflow_admins`` is the group (one of ``groups``) that administers Airflow.
    ``smoke_test_secret_env`` adds the smoke-test client, its secret read at import from that
    environment variable; without it the realm is unchanged.
    """
    if airflow_admins not in groups:
        raise ValueError(f"Airflow's admin group {airflow_admins!r} is not one of the realm's groups {sorted(groups)}")
    mapper = audience_mapper(audience)
    clients: list[dict[str, object]] = [
        trino_client(audience, secret=placeholder(TRINO_SECRET_ENV), trino_url=placeholder(TRINO_URL_ENV)),
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
            "protocolMappers": [mapper],
        },
        airflow_client(airflow_admins, secret=placeholder(AIRFLOW_SECRET_ENV),
                       airflow_url=placeholder(AIRFLOW_URL_ENV)),
        audit_client(audience, secret=placeholder(AUDIT_SECRET_ENV)),
    ]
    if smoke_test_secret_env:
        clients.append({
            "clientId": SMOKE_TEST_CLIENT,
            "name": "helm test: runs SELECT 1 as its service account",
            "enabled": True,
            "publicClient": False,
            "clientAuthenticatorType": "client-secret",
            "secret": placeholder(smoke_test_secret_env),
            "standardFlowEnabled": False,
            "implicitFlowEnabled": False,
            "directAccessGrantsEnabled": False,
            "serviceAccountsEnabled": True,
            "protocol": "openid-connect",
            "protocolMappers": [mapper],
        })
    return {
        "realm": name,
        "enabled": True,
        "sslRequired": "all",
        "registrationAllowed": False,
        "resetPasswordAllowed": False,
        "rememberMe": False,
        "loginWithEmailAllowed": False,
        **BRUTE_FORCE,
        **SESSIONS,
        # Logins and admin changes are kept for the audit receiver to copy into the trail.
        **audit.REALM_EVENT_SETTINGS,
        "accessTokenLifespan": ACCESS_TOKEN_SECONDS,
        "oauth2DeviceCodeLifespan": 600,
        "oauth2DevicePollingInterval": 5,
        "groups": [{"name": g} for g in sorted(groups)],
        "clients": clients,
        # Users are never in the realm file, but for the audit client's service account and its roles.
        "users": [audit_service_account()],
    }


def realm_json(name: str, audience: str, groups: Sequence[str], *, airflow_admins: str, allow_password_grant: bool,
               smoke_test_secret_env: str | None = None) -> str:
    data = realm(name, audience, groups, airflow_admins=airflow_admins, allow_password_grant=allow_password_grant,
                 smoke_test_secret_env=smoke_test_secret_env)
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
