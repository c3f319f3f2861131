"""Access tokens from Keycloak.

Researchers on a terminal use the device authorization grant (``device_login``). The
password grant (``dev_token``) exists only for the local dev users and tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from santelake.errors import SantelakeError
from santelake.render.keycloak import CLI_CLIENT
from santelake.runtime import devusers
from santelake.runtime.layout import Layout

# Keycloak answers 500 while it replaces database connections a restart of its database left
# stale, one a request: as many failed requests as its pool held connections (CI met more than
# four). Such answers are asked again for this long; a refusal (4xx) is final.
TOKEN_PATIENCE = 30.0
TOKEN_PAUSE = 0.5


def _endpoint(layout: Layout, name: str) -> str:
    return f"{layout.keycloak_issuer}/protocol/openid-connect/{name}"


def token_endpoint(layout: Layout) -> str:
    return _endpoint(layout, "token")


# What a login meets while Keycloak is down; tokens issued before keep working (docs/operations.md).
KEYCLOAK_DOWN = ("Keycloak at {url} does not answer ({error}): no one can log in until it is back. Tokens "
                 "issued before keep working until they expire (5 minutes). See `santelake status`.")


def dev_token(layout: Layout, user: str) -> str:
    """An access token for a dev user, by the password grant."""
    passwords = devusers.passwords(layout)
    if user not in passwords:
        raise SantelakeError(f"no dev user {user!r}; known: {', '.join(sorted(passwords))}")
    deadline = time.monotonic() + TOKEN_PATIENCE
    while True:
        try:
            response = requests.post(
                _endpoint(layout, "token"),
                data={"grant_type": "password", "client_id": CLI_CLIENT, "username": user,
                      "password": passwords[user], "scope": "openid"},
                verify=str(layout.tls.ca_cert), timeout=10,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise SantelakeError(KEYCLOAK_DOWN.format(url=layout.keycloak_issuer, error=type(exc).__name__)) from None
        if response.status_code < 500 or time.monotonic() >= deadline:
            break
        time.sleep(TOKEN_PAUSE)
    if response.status_code != 200:
        raise SantelakeError(f"Keycloak refused a token for {user!r}: HTTP {response.status_code} {response.text}")
    return str(response.json()["access_token"])


def device_login(layout: Layout, show: Callable[[str], None] = print) -> str:
    """The device authorization grant: show a URL and code, wait for the user to approve; the access token."""
    return str(device_grant(layout, show)["access_token"])


def device_grant(layout: Layout, show: Callable[[str], None] = print) -> dict[str, Any]:
    """The device authorization grant: Keycloak's whole answer (access and refresh tokens, lifetimes)."""
    verify = str(layout.tls.ca_cert)
    start = requests.post(_endpoint(layout, "auth/device"), data={"client_id": CLI_CLIENT, "scope": "openid"},
                          verify=verify, timeout=10)
    if start.status_code != 200:
        raise SantelakeError(f"Keycloak refused the device login: HTTP {start.status_code} {start.text}")
    grant = start.json()
    show(f"Open {grant['verification_uri_complete']} and approve the code {grant['user_code']}")
    interval = int(grant.get("interval", 5))
    deadline = time.monotonic() + int(grant.get("expires_in", 600))
    while time.monotonic() < deadline:
        time.sleep(interval)
        poll = requests.post(
            _endpoint(layout, "token"),
            data={"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": CLI_CLIENT,
                  "device_code": grant["device_code"]},
            verify=verify, timeout=10,
        )
        if poll.status_code == 200:
            return dict(poll.json())
        error = poll.json().get("error")
        if error == "slow_down":
            interval += 5
        elif error != "authorization_pending":
            raise SantelakeError(f"device login failed: {poll.text}")
    raise SantelakeError("device login expired before it was approved")
