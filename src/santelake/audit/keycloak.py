"""Keycloak's logins and admin changes, copied into the audit trail.

Keycloak keeps the realm's events (logins, failed logins, logouts, token exchanges) and admin
events (users, groups, clients created, changed, deleted) in its own database, for a week
(``EVENTS_KEPT_SECONDS``). The receiver reads them every few seconds through Keycloak's admin API
with a client of its own (``AUDIT_CLIENT``, allowed to view events and users and nothing else),
oldest first, and seals each one into the chain. Where it stopped is read back from the trail
itself (the newest record of each kind), so a restarted receiver goes on from there and copies
nothing twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from santelake.audit.store import Entry

log = logging.getLogger("santelake.audit")

AUDIT_CLIENT = "santelake-audit"
# What the audit client's service account may do in the realm (realm-management's client roles).
AUDIT_CLIENT_ROLES = ("view-events", "view-users")
# Keycloak's copy is only a buffer: the trail keeps them (a receiver down longer loses events).
EVENTS_KEPT_SECONDS = 7 * 24 * 3600
# Event types Keycloak saves for the realm: logins and their failures, logouts, the token grants.
EVENT_TYPES = ("LOGIN", "LOGIN_ERROR", "LOGOUT", "LOGOUT_ERROR", "CODE_TO_TOKEN", "CODE_TO_TOKEN_ERROR",
               "CLIENT_LOGIN", "CLIENT_LOGIN_ERROR", "OAUTH2_DEVICE_CODE_TO_TOKEN",
               "OAUTH2_DEVICE_CODE_TO_TOKEN_ERROR", "REFRESH_TOKEN_ERROR", "UPDATE_PASSWORD", "UPDATE_CREDENTIAL")
# The realm settings that make Keycloak keep them (applied to a new realm and an existing one alike).
REALM_EVENT_SETTINGS: dict[str, Any] = {
    "eventsEnabled": True,
    "eventsExpiration": EVENTS_KEPT_SECONDS,
    "enabledEventTypes": list(EVENT_TYPES),
    "adminEventsEnabled": True,
    "adminEventsDetailsEnabled": True,
}
STREAMS = {"keycloak.event": "events", "keycloak.admin_event": "admin-events"}
PAGE = 500


@dataclass
class Cursor:
    """The newest event time copied, and the ids copied at exactly that time."""

    time: int = 0
    ids: set[str] = field(default_factory=set)

    def after(self, event: dict[str, Any]) -> bool:
        at = int(event.get("time") or 0)
        return at > self.time or (at == self.time and str(event.get("id")) not in self.ids)

    def advance(self, event: dict[str, Any]) -> None:
        at = int(event.get("time") or 0)
        if at > self.time:
            self.time, self.ids = at, set()
        self.ids.add(str(event.get("id")))


def entry(kind: str, event: dict[str, Any], usernames: Callable[[str], str]) -> Entry:
    """One Keycloak event as a trail entry; the actor is the username where Keycloak gives one."""
    if kind == "keycloak.event":
        details = event.get("details") or {}
        who = details.get("username") or (usernames(event["userId"]) if event.get("userId") else "")
        subject = str(event.get("type", ""))
    else:
        auth = event.get("authDetails") or {}
        who = usernames(auth["userId"]) if auth.get("userId") else ""
        subject = f"{event.get('operationType', '')} {event.get('resourcePath', '')}".strip()
    return Entry(kind=kind, actor=str(who or ""), subject=subject, payload={"event": event})


def cursor_from(records: Iterator[tuple[str, str]]) -> dict[str, Cursor]:
    """The cursors a trail's newest Keycloak records give: ``records`` are (kind, payload), newest first."""
    cursors = {kind: Cursor() for kind in STREAMS}
    settled: set[str] = set()
    for kind, payload in records:
        if kind not in cursors or kind in settled:
            continue
        event = json.loads(payload).get("event", {})
        at = int(event.get("time") or 0)
        cursor = cursors[kind]
        if cursor.time and at < cursor.time:
            settled.add(kind)
            continue
        cursor.advance(event)
    return cursors


class KeycloakEvents:
    """Keycloak's admin API as the audit client (client credentials), verified TLS."""

    def __init__(self, url: str, realm: str, secret: str, ca_file: str, timeout: float = 30) -> None:
        import requests

        self.url, self.realm, self.secret, self.timeout = url.rstrip("/"), realm, secret, timeout
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ca_file
        self._token = ""
        self._names: dict[str, str] = {}

    def _authorise(self) -> None:
        answer = self.session.post(f"{self.url}/realms/{self.realm}/protocol/openid-connect/token",
                                   data={"grant_type": "client_credentials", "client_id": AUDIT_CLIENT,
                                         "client_secret": self.secret}, timeout=self.timeout)
        if answer.status_code != 200:
            raise RuntimeError(f"Keycloak refused the audit client's token: HTTP {answer.status_code}")
        self._token = answer.json()["access_token"]

    def token(self) -> str:
        """A new access token of the audit client (its audience includes Trino: the canary's identity)."""
        self._authorise()
        return self._token

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        for attempt in (1, 2):
            if not self._token:
                self._authorise()
            answer = self.session.get(f"{self.url}/admin/realms/{self.realm}/{path}", params=params,
                                      headers={"Authorization": f"Bearer {self._token}"}, timeout=self.timeout)
            if answer.status_code == 401 and attempt == 1:
                self._token = ""  # expired: a new one, once
                continue
            if answer.status_code != 200:
                raise RuntimeError(f"Keycloak's {path}: HTTP {answer.status_code}")
            return answer.json()
        raise AssertionError("unreachable")

    def username(self, user_id: str) -> str:
        if user_id not in self._names:
            try:
                self._names[user_id] = str(self._get(f"users/{user_id}", {}).get("username") or user_id)
            except RuntimeError:
                self._names[user_id] = user_id  # a deleted user: its id is all there is
        return self._names[user_id]

    def since(self, kind: str, cursor: Cursor) -> list[dict[str, Any]]:
        """Every event of ``kind`` from ``cursor`` on, oldest first, those already copied left out."""
        found: list[dict[str, Any]] = []
        first = 0
        while True:
            page = self._get(STREAMS[kind], {"dateFrom": cursor.time, "direction": "asc", "first": first,
                                             "max": PAGE})
            found += [e for e in page if cursor.after(e)]
            if len(page) < PAGE:
                return sorted(found, key=lambda e: (int(e.get("time") or 0), str(e.get("id"))))
            first += PAGE
