"""A researcher's session from their own Python or notebook: one login, then queries as frames.

``login(layout)`` runs Keycloak's device authorization grant (a URL and a code to approve in
any browser), then keeps the refresh token in memory only: each request to Trino carries an
access token renewed before it expires, so a session lasts as long as Keycloak's SSO session
(and ends when the project does: the policies withdraw the access, not the token). Nothing
is written to disk and no token is ever shown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from santelake.access.token import KEYCLOAK_DOWN, device_grant, token_endpoint
from santelake.errors import SantelakeError
from santelake.render.keycloak import CLI_CLIENT
from santelake.runtime.layout import Layout

# Renew the access token when it has less than this many seconds left.
RENEW_MARGIN = 30.0


@dataclass
class Tokens:
    """An access token and the refresh token that renews it; thread-safe."""

    endpoint: str
    ca: str
    access: str
    refresh: str
    expires_at: float  # time.monotonic()
    renewals: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_response(cls, endpoint: str, ca: str, answer: dict[str, Any]) -> Tokens:
        return cls(endpoint, ca, str(answer["access_token"]), str(answer["refresh_token"]),
                   time.monotonic() + float(answer["expires_in"]))

    def current(self) -> str:
        """A valid access token, renewed first if it expires within ``RENEW_MARGIN`` seconds."""
        with self._lock:
            if time.monotonic() > self.expires_at - RENEW_MARGIN:
                self._renew()
            return self.access

    def _renew(self) -> None:
        try:
            answer = requests.post(self.endpoint, data={"grant_type": "refresh_token", "client_id": CLI_CLIENT,
                                                        "refresh_token": self.refresh},
                                   verify=self.ca, timeout=10)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise SantelakeError(KEYCLOAK_DOWN.format(url=self.endpoint, error=type(exc).__name__)) from None
        if answer.status_code != 200:
            try:
                why = str(answer.json().get("error_description") or answer.json().get("error"))
            except ValueError:
                why = answer.text[:200]
            raise SantelakeError(f"Keycloak ended the session (HTTP {answer.status_code}, {why}): log in again")
        body = answer.json()
        self.access, self.expires_at = str(body["access_token"]), time.monotonic() + float(body["expires_in"])
        self.refresh = str(body.get("refresh_token") or self.refresh)
        self.renewals += 1


class _Bearer(requests.auth.AuthBase):
    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.tokens.current()}"
        return request


class _TrinoAuth:
    """trino's Authentication interface: every request of the client's session carries a fresh token."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    def set_http_session(self, http_session: requests.Session) -> requests.Session:
        http_session.auth = _Bearer(self.tokens)
        return http_session

    def get_exceptions(self) -> tuple[type[Exception], ...]:
        return ()


@dataclass
class Session:
    """One researcher's logged-in session on one installation."""

    layout: Layout
    tokens: Tokens

    def connect(self, catalog: str = "iceberg") -> Any:
        """A DB-API connection to Trino (TLS verified with the platform CA) that renews its own token."""
        from santelake.access import query

        return query.connect(self.layout, _TrinoAuth(self.tokens), catalog=catalog)

    def frame(self, sql: str) -> Any:
        """The answer to ``sql`` as a pandas DataFrame, columns named as Trino names them."""
        import pandas as pd

        from santelake.access import query

        names, rows = query.run(self.layout, _TrinoAuth(self.tokens), sql)
        return pd.DataFrame(rows, columns=names)


def login(layout: Layout, show: Callable[[str], None] = print) -> Session:
    """Log in with the device authorization grant and return the session."""
    endpoint, ca = token_endpoint(layout), str(layout.tls.ca_cert)
    return Session(layout, Tokens.from_response(endpoint, ca, device_grant(layout, show)))
