"""What santelake itself does, recorded in the audit trail: policy applies, loads, erasures.

Sent to the receiver's ``/v1/events/santelake`` with its token, verified TLS, retried on a
connection failure or a 5xx for about 15 seconds. Where the receiver is (``SANTELAKE_AUDIT_URL``,
``SANTELAKE_AUDIT_TOKEN_FILE``) comes from the environment: the local stack sets both for its
Airflow and its command line. Where neither is set (a chart install, until it runs the
receiver), nothing is sent and a warning says so: never silently.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from santelake.errors import ServiceError

URL_ENV = "SANTELAKE_AUDIT_URL"
TOKEN_FILE_ENV = "SANTELAKE_AUDIT_TOKEN_FILE"
CA_FILE_ENV = "SANTELAKE_CA_FILE"
ACTOR_ENV = "SANTELAKE_ACTOR"
SANTELAKE_PATH = "/v1/events/santelake"
# The kinds santelake records about itself (stored as ``santelake.<kind>``).
KINDS = ("policy.apply", "load", "erasure", "rekey")
DELAYS = (0.5, 1, 2, 4, 8)

log = logging.getLogger("santelake.audit")


class AuditUnavailableError(ServiceError):
    """The receiver did not take an event: what was done is not in the trail."""


def actor() -> str:
    """Who is acting: ``SANTELAKE_ACTOR`` (set by DAGs), else the operating system's user."""
    return os.environ.get(ACTOR_ENV) or getpass.getuser()


def record(kind: str, subject: str, payload: Any, who: str | None = None,
           env: dict[str, str] | None = None) -> int | None:
    """Record ``kind`` about ``subject`` in the trail; the record's number, or None when no receiver is set.

    Raises :class:`AuditUnavailableError` when the receiver is set but does not take the event.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown audit event kind {kind!r}; known: {', '.join(KINDS)}")
    env = dict(os.environ) if env is None else env
    url, token_file = env.get(URL_ENV), env.get(TOKEN_FILE_ENV)
    if not url or not token_file:
        print(f"santelake: warning: {URL_ENV} and {TOKEN_FILE_ENV} are not set: this {kind} is not recorded in "
              f"an audit trail", file=sys.stderr)
        return None
    import requests

    token = Path(token_file).read_text(encoding="utf-8").strip()
    if not token:
        raise AuditUnavailableError(f"{TOKEN_FILE_ENV}={token_file} is empty")
    session = requests.Session()
    session.trust_env = False
    session.verify = env.get(CA_FILE_ENV) or True
    body = json.dumps({"kind": kind, "actor": who or actor(), "subject": subject, "payload": payload})
    last = ""
    for delay in (*DELAYS, None):
        try:
            response = session.post(url.rstrip("/") + SANTELAKE_PATH, data=body, timeout=30,
                                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            if response.status_code == 200:
                return int(response.json()["seq"])
            last = f"HTTP {response.status_code}: {response.text[:200]}"
            if response.status_code < 500:
                break
        except requests.RequestException as exc:
            last = f"{type(exc).__name__}: {str(exc)[:200]}"
        if delay is None:
            break
        log.warning("audit: the receiver did not take a %s event (%s); retrying in %.1f s", kind, last, delay)
        time.sleep(delay)
    raise AuditUnavailableError(f"the audit receiver at {url} did not record this {kind} ({last})")
