"""Trino's audit listener, proven on: a canary query whose event must reach the trail.

Every ``interval`` seconds the receiver runs ``SELECT 'santelake audit canary'`` on Trino as
its own Keycloak client (a service account that no policy grants any table), then waits for
that query's completed event. Should Trino answer but the event not arrive within
``patience`` seconds, the listener is off (or its events go elsewhere): the receiver seals an
``audit.listener_silent`` record naming the canary query, so switching the listener off is
recorded in the very trail it feeds. Trino not answering at all is not the listener's fault
and records nothing (the queries it does not run need no record).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

CANARY_SQL = "SELECT 'santelake audit canary'"
SILENT_KIND = "audit.listener_silent"


class TrinoCanary:
    """Runs the canary query through Trino's HTTP protocol with a bearer token, TLS verified."""

    def __init__(self, trino_url: str, token: Callable[[], str], ca_file: str, timeout: float = 30) -> None:
        import requests

        self.url = trino_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = ca_file

    def run(self) -> str:
        """The canary's query id, once Trino ran it to the end; raises if Trino did not."""
        # A coordinator still starting refuses every query before creating it (SERVER_STARTING_UP):
        # such a refusal proves nothing about the listener, so the canary waits for a ready one.
        info = self.session.get(f"{self.url}/v1/info", timeout=self.timeout)
        info.raise_for_status()
        if info.json().get("starting", True):
            raise RuntimeError("Trino is still starting")
        headers = {"Authorization": f"Bearer {self.token()}", "X-Trino-Source": "santelake-audit-canary"}
        answer = self.session.post(f"{self.url}/v1/statement", data=CANARY_SQL, headers=headers,
                                   timeout=self.timeout)
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        query_id = str(body["id"])
        deadline = time.monotonic() + self.timeout
        while "nextUri" in body:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the canary query {query_id} did not finish in {self.timeout:.0f} s")
            answer = self.session.get(body["nextUri"], headers=headers, timeout=self.timeout)
            answer.raise_for_status()
            body = answer.json()
        if "error" in body:
            raise RuntimeError(f"the canary query {query_id} failed: {body['error'].get('message', '')[:200]}")
        return query_id
