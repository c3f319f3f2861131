"""Researchers log in to Trino once, through their browser, from the tools they already use: the
Trino CLI 476 (--external-authentication), the Trino JDBC driver 476 (externalAuthentication=true)
and Python's trino client (OAuth2Authentication). Each prints or hands over Trino's login link; the
test then does what the researcher does in a browser (Keycloak's login page, back to Trino), and
the tool's query is answered as the researcher, named by username."""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from santelake.access import query as access
from santelake.access.token import dev_token
from santelake.names import TRINO_AUDIENCE
from santelake.runtime import devusers
from santelake.runtime.artifacts import TRINO_CLI, TRINO_JDBC, fetch_maven
from santelake.runtime.java import find_java_home
from santelake.runtime.layout import Layout
from santelake.runtime.services.keycloak import Keycloak
from tests.support.browser_login import log_in_to_trino

pytestmark = pytest.mark.integration

JDBC_CLIENT = Path(__file__).resolve().parents[1] / "support" / "JdbcQuery.java"
LINK = re.compile(r"(https://\S+/oauth2/token/initiate/\S+)")
# alice's project filters beneficiaries to its region: the same count by every way in is the
# same principal under the same rules.
QUESTION = "SELECT current_user, n FROM (SELECT count(*) AS n FROM iceberg.snds.beneficiaries)"
TOOL_TIMEOUT = 300


def log_in_through_the_browser(layout: Layout, link: str, user: str) -> None:
    log_in_to_trino(link, layout.url("trino"), layout.keycloak_issuer, str(layout.tls.ca_cert), user,
                    devusers.passwords(layout)[user])


@pytest.fixture(scope="module")
def expected(layout: Layout) -> tuple[str, int]:
    """alice's answer to QUESTION with a token from the device-less password grant (dev only)."""
    token = dev_token(layout, "alice")
    _, rows = access.run(layout, token, QUESTION)
    assert rows[0][0] == "alice" and int(rows[0][1]) > 0, rows
    return "alice", int(rows[0][1])


@pytest.fixture(scope="module")
def java(layout: Layout) -> str:
    return str(find_java_home(layout.settings.java_home) / "bin" / "java")


class Tool:
    """A researcher's tool in its own process: its output read line by line as it comes."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            self.lines.put(line)

    def link(self) -> str:
        """The login link the tool prints, as it asks the researcher to open it."""
        deadline = time.monotonic() + TOOL_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            found = LINK.search(line)
            if found:
                return found[1]
        raise AssertionError(f"the tool printed no login link:\n{''.join(self.output)[-3000:]}")

    def finish(self) -> str:
        self.process.wait(timeout=TOOL_TIMEOUT)
        time.sleep(0.2)  # the reader drains the last lines
        text = "".join(self.output)
        assert self.process.returncode == 0, text[-3000:]
        return text


@pytest.fixture()
def tools() -> Iterator[list[Tool]]:
    started: list[Tool] = []
    yield started
    for tool in started:
        if tool.process.poll() is None:
            tool.process.kill()


def test_the_trino_cli_logs_in_through_the_browser(layout: Layout, expected: tuple[str, int], java: str,
                                                    tools: list[Tool]) -> None:
    cli = fetch_maven(TRINO_CLI, layout.settings.cache_dir)
    # --user: the CLI otherwise asks to act as the operating system's user, which Trino refuses.
    tool = Tool([java, "-jar", str(cli), "--server", layout.url("trino"), "--user", "alice",
                 "--external-authentication",
                 "--external-authentication-redirect-handler=PRINT", f"--truststore-path={layout.tls.ca_cert}",
                 "--output-format=TSV", "--execute", QUESTION])
    tools.append(tool)
    log_in_through_the_browser(layout, tool.link(), "alice")
    lines = tool.finish().splitlines()
    assert f"{expected[0]}\t{expected[1]}" in lines, lines[-20:]


def test_a_jdbc_tool_logs_in_through_the_browser(layout: Layout, expected: tuple[str, int], java: str,
                                                  tools: list[Tool]) -> None:
    driver = fetch_maven(TRINO_JDBC, layout.settings.cache_dir)
    host = urlsplit(layout.url("trino")).netloc
    url = (f"jdbc:trino://{host}/iceberg?SSL=true&SSLTrustStorePath={layout.tls.ca_cert}"
           "&externalAuthentication=true&externalAuthenticationRedirectHandlers=PRINT")
    tool = Tool([java, "-cp", str(driver), str(JDBC_CLIENT), url, QUESTION])
    tools.append(tool)
    log_in_through_the_browser(layout, tool.link(), "alice")
    rows = [line.split("\t")[1:] for line in tool.finish().splitlines() if line.startswith("ROW\t")]
    assert rows == [[expected[0], str(expected[1])]], rows


@pytest.fixture()
def short_access_tokens(layout: Layout) -> Iterator[int]:
    """Access tokens of Trino's client that live 20 s, not 5 minutes, so that a refresh comes in a test."""
    admin = Keycloak(layout).admin()
    internal_id = admin.get_client_id(TRINO_AUDIENCE)
    client = admin.get_client(internal_id)
    attributes = dict(client.get("attributes") or {})
    admin.update_client(internal_id, client | {"attributes": attributes | {"access.token.lifespan": "20"}})
    try:
        yield 20
    finally:
        admin.update_client(internal_id, admin.get_client(internal_id) | {"attributes": attributes})


def test_python_logs_in_once_and_the_session_refreshes_itself(layout: Layout, expected: tuple[str, int],
                                                              short_access_tokens: int) -> None:
    from trino.auth import OAuth2Authentication

    links: list[str] = []

    def open_in_browser(link: str) -> None:
        links.append(link)
        log_in_through_the_browser(layout, link, "alice")

    login: Any = OAuth2Authentication(redirect_auth_url_handler=open_in_browser)
    # The client's token cache (trino 0.340's in-memory one, no keyring installed): Trino's session token.
    tokens = login._bearer._token_cache._cache
    _, first = access.run(layout, login, QUESTION)
    assert [tuple(first[0])] == [expected] and len(links) == 1
    issued = set(tokens.values())
    time.sleep(short_access_tokens + 5)  # Keycloak's access token has expired; the refresh token has not
    _, again = access.run(layout, login, QUESTION)
    assert [tuple(again[0])] == [expected]
    assert len(links) == 1, "the researcher was asked to log in again instead of the session refreshing"
    # Trino refreshed the session with Keycloak and handed the client a new token (no link to open).
    assert set(tokens.values()) - issued, "the client still holds its first token: nothing was refreshed"
