"""Running SQL on Trino as a user, over HTTPS with a Keycloak token, TLS verified."""

from __future__ import annotations

import time
from typing import Any

import requests

from santelake.errors import SantelakeError
from santelake.runtime.layout import Layout


def connect(layout: Layout, token: str | Any, *, catalog: str = "iceberg", schema: str | None = None) -> Any:
    """A DB-API connection verified with the platform CA, whatever the environment says. ``token``: an
    access token, or a ``trino.auth.Authentication`` (a session that renews its own, access/session.py)."""
    import requests
    import trino
    from trino.auth import JWTAuthentication

    # requests lets REQUESTS_CA_BUNDLE override a session's CA; the platform CA must win.
    session = requests.Session()
    session.trust_env = False
    session.verify = str(layout.tls.ca_cert)
    s = layout.settings
    return trino.dbapi.connect(  # type: ignore[no-untyped-call]
        host=s.hostname, port=s.trino_port, http_scheme="https",
        auth=JWTAuthentication(token) if isinstance(token, str) else token,
        catalog=catalog, schema=schema, http_session=session, request_timeout=REQUEST_TIMEOUT,
    )


# Seconds one HTTP request to Trino may take (a query is many requests): nothing waits forever.
REQUEST_TIMEOUT = 120.0


# Trino's Iceberg JDBC catalog keeps its database connections across a restart of that
# database; the first statement after it fails with this before running anything, and the
# catalog replaces the connection (reproduced on the local stack, test_catalog_restart.py).
STALE_CATALOG = "Cannot check and eventually update SQL schema"
ATTEMPTS = 3

# Trino answers /v1/info "not starting" a few seconds before its node manager lists a node that
# can run work; a query in between fails with NO_NODES_AVAILABLE having run nothing (CI caught
# it right after a restart). Such a query is asked again, for at most this long.
NO_NODES = "NO_NODES_AVAILABLE"
NO_NODES_PATIENCE = 30.0
NO_NODES_PAUSE = 1.0


def run(layout: Layout, token: str | Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of ``sql``. Asked again only when Trino ran nothing of it: at most twice
    when the catalog's connection was stale, and for up to ``NO_NODES_PATIENCE`` seconds while a
    Trino that has just started has no node to run it on."""
    from trino.exceptions import HttpError, TrinoConnectionError, TrinoQueryError

    stale = 0  # stale-catalog answers so far; waiting for a node does not count against them
    no_nodes_deadline: float | None = None
    while True:
        conn = connect(layout, token)
        try:
            cur = conn.cursor()
            cur.execute(sql)
            rows = [tuple(r) for r in cur.fetchall()]
            names = [d[0] for d in (cur.description or [])]
            return names, rows
        except TrinoQueryError as exc:
            if exc.error_name == NO_NODES:
                no_nodes_deadline = no_nodes_deadline or time.monotonic() + NO_NODES_PATIENCE
                if time.monotonic() >= no_nodes_deadline:
                    raise SantelakeError(
                        f"Trino at {layout.url('trino')} has had no node to run queries on for "
                        f"{NO_NODES_PATIENCE:.0f} s: its workers are down or not yet registered "
                        f"(santelake status; Trino's server.log)") from None
                time.sleep(NO_NODES_PAUSE)
                continue
            stale += 1
            if stale >= ATTEMPTS or exc.message != STALE_CATALOG:
                raise
        except (requests.ConnectionError, requests.Timeout, TrinoConnectionError, HttpError) as exc:
            raise SantelakeError(
                f"Trino at {layout.url('trino')} stopped answering ({type(exc).__name__}): the query did not "
                f"complete and wrote nothing; run it again once Trino is back (santelake status)") from None
        finally:
            conn.close()


def format_table(names: list[str], rows: list[tuple[Any, ...]]) -> str:
    cells = [[str(n) for n in names]] + [["NULL" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(names))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    if lines:
        lines.insert(1, "-+-".join("-" * w for w in widths))
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)
