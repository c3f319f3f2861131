"""``santelake smoke-test``: the Helm chart's ``helm test``, against the installed platform.

It checks that Trino answers over TLS verified against the given CA and refuses a query
without a token; and, when the chart's smoke-test client is enabled, gets a token from
Keycloak by the client credentials grant (a confidential client whose service-account user
is the principal) and runs ``SELECT 1`` with it. Settings come from environment variables
the chart sets, the client's secret through ``SANTELAKE_SECRET_<NAME>_FILE``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from santelake.errors import ConfigError, ServiceError
from santelake.render.keycloak import SMOKE_TEST_CLIENT
from santelake.runtime import secrets

ENV_TRINO_URL = "SANTELAKE_TRINO_URL"
ENV_TRINO_CA_FILE = "SANTELAKE_TRINO_CA_FILE"
ENV_ISSUER = "SANTELAKE_KEYCLOAK_ISSUER"
ENV_KEYCLOAK_CA_FILE = "SANTELAKE_KEYCLOAK_CA_FILE"
SECRET_CLIENT = "smoke-test-client-secret"
# Keycloak resolves the client's secret in the imported realm from this variable.
REALM_SECRET_ENV = "SANTELAKE_SMOKE_TEST_CLIENT_SECRET"
TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class TokenClient:
    issuer: str
    client_id: str
    secret: str
    ca_file: str

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"


@dataclass(frozen=True)
class SmokeTest:
    trino_url: str
    trino_ca_file: str
    client: TokenClient | None


def _https(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ConfigError(f"{name}: {url!r} is not an https:// URL")
    return url.rstrip("/")


def smoke_test_from_env(env: Mapping[str, str]) -> SmokeTest:
    """The checks to run; a client secret without the issuer (or the reverse) is refused."""
    missing = [name for name in (ENV_TRINO_URL, ENV_TRINO_CA_FILE) if not env.get(name)]
    secret = secrets.provided(SECRET_CLIENT, env)
    client = None
    if secret is not None or env.get(ENV_ISSUER):
        missing += [name for name in (ENV_ISSUER, ENV_KEYCLOAK_CA_FILE) if not env.get(name)]
        if secret is None:
            missing.append(f"{secrets.env_name(SECRET_CLIENT)}_FILE")
    if missing:
        raise ConfigError(f"santelake smoke-test: not set: {', '.join(missing)} (the chart's test pod sets them)")
    if secret is not None:
        client = TokenClient(_https(ENV_ISSUER, env[ENV_ISSUER]), SMOKE_TEST_CLIENT, secret, env[ENV_KEYCLOAK_CA_FILE])
    return SmokeTest(_https(ENV_TRINO_URL, env[ENV_TRINO_URL]), env[ENV_TRINO_CA_FILE], client)


def _session(ca_file: str) -> Any:
    import requests

    # requests lets REQUESTS_CA_BUNDLE override a session's CA; the given CA must win.
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_file
    return session


# A new pod's first connections may be dropped until the NetworkPolicy enforcer has added its
# address to the policies that let it in (seen on the test cluster on 2 busy cores: the test pod's
# first connection to Trino timed out, a run a minute later passed). Its first request is retried
# for this long; a refusal that lasts is still a failure.
FIRST_CONNECT_SECONDS = 120


def refused_without_token(trino_url: str, ca_file: str, *, log: Callable[[str], None] = print,
                          patience: float = FIRST_CONNECT_SECONDS) -> None:
    import time

    import requests

    deadline = time.monotonic() + patience
    while True:
        try:
            response = _session(ca_file).post(f"{trino_url}/v1/statement", data="SELECT 1",
                                              headers={"X-Trino-User": "smoke-test"}, timeout=TIMEOUT_SECONDS)
            break
        except requests.ConnectionError as error:
            if time.monotonic() >= deadline:
                raise ServiceError(f"Trino at {trino_url} could not be reached for {patience:.0f} s: {error}") from None
            log(f"Trino at {trino_url} not reachable yet ({type(error).__name__}); trying again")
            time.sleep(5)
    if response.status_code != 401:
        raise ServiceError(f"Trino at {trino_url} answered a query without a token with HTTP "
                           f"{response.status_code}, not 401: authentication is not enforced")


def client_credentials_token(client: TokenClient) -> str:
    response = _session(client.ca_file).post(
        client.token_url, data={"grant_type": "client_credentials", "client_id": client.client_id,
                                "client_secret": client.secret}, timeout=TIMEOUT_SECONDS)
    if response.status_code != 200:
        raise ServiceError(f"Keycloak refused a token to client {client.client_id!r} at {client.token_url}: "
                           f"HTTP {response.status_code} {response.text[:500]}")
    return str(response.json()["access_token"])


def select_one(trino_url: str, ca_file: str, token: str) -> list[tuple[Any, ...]]:
    import trino
    from trino.auth import JWTAuthentication

    parts = urlsplit(trino_url)
    conn = trino.dbapi.connect(  # type: ignore[no-untyped-call]
        host=parts.hostname, port=parts.port or 443, http_scheme="https", auth=JWTAuthentication(token),
        http_session=_session(ca_file))
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT 1")
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        conn.close()


def run(test: SmokeTest, log: Callable[[str], None] = print) -> None:
    refused_without_token(test.trino_url, test.trino_ca_file, log=log)
    log(f"Trino at {test.trino_url} answers over verified TLS and refuses a query without a token")
    if test.client is None:
        log("no smoke-test client configured: SELECT 1 as a user not run")
        return
    token = client_credentials_token(test.client)
    rows = select_one(test.trino_url, test.trino_ca_file, token)
    if rows != [(1,)]:
        raise ServiceError(f"SELECT 1 returned {rows!r}")
    log(f"SELECT 1 as {test.client.client_id}'s service account: {rows[0][0]}")


def cmd_smoke_test(args: argparse.Namespace) -> int:
    run(smoke_test_from_env(os.environ))
    return 0


def register(subparsers: Any) -> None:
    command = subparsers.add_parser(
        "smoke-test", help="check an installed platform: Trino over verified TLS, a token, SELECT 1 "
                           "(the Helm chart's helm test; settings from the environment)")
    command.set_defaults(func=cmd_smoke_test)


def env_names() -> dict[str, str]:
    """The variables the chart's test pod sets, for contract.json."""
    return {"trinoUrl": ENV_TRINO_URL, "trinoCaFile": ENV_TRINO_CA_FILE, "issuer": ENV_ISSUER,
            "keycloakCaFile": ENV_KEYCLOAK_CA_FILE,
            "clientSecretFile": f"{secrets.env_name(SECRET_CLIENT)}_FILE"}
