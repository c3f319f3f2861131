"""A researcher's notebook: logged in once by the device grant (approved in Keycloak's own pages),
queries answered as pandas frames, and the access token renewed with no new login."""

from __future__ import annotations

import html
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from santelake.access import session
from santelake.errors import SantelakeError
from santelake.runtime import devusers
from santelake.runtime.layout import Layout
from tests.support.browser_login import TIMEOUT, LoginForm
from tests.support.browser_login import session as browser

pytestmark = pytest.mark.integration

NOTEBOOK = Path(__file__).resolve().parents[2] / "docs" / "notebooks" / "first-query.ipynb"
ASKED = re.compile(r"Open (https://\S+) and approve the code (\S+)")


def approve(layout: Layout, url: str, user: str) -> None:
    """What the researcher does in a browser: open the link, log in to Keycloak, grant if asked."""
    agent = browser(str(layout.tls.ca_cert))
    page = agent.get(url, timeout=TIMEOUT)
    assert page.status_code == 200, page.text[-2000:]
    form = LoginForm()
    form.feed(page.text)
    assert form.action and form.action.startswith(f"{layout.keycloak_issuer}/login-actions/"), page.text[-2000:]
    answer = agent.post(form.action, data=form.fields | {"username": user,
                                                         "password": devusers.passwords(layout)[user]},
                        timeout=TIMEOUT)
    consent = re.search(r'<form[^>]*action="([^"]+)"[^>]*>((?:(?!</form>).)*name="accept"(?:(?!</form>).)*)</form>',
                        answer.text, re.DOTALL)
    if consent:  # Keycloak asks the user to grant the CLI client access: grant it
        hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', consent[2]))
        answer = agent.post(urljoin(answer.url, html.unescape(consent[1])), data=hidden | {"accept": "Yes"},
                            timeout=TIMEOUT)
    assert answer.status_code == 200 and "Device Login Successful" in answer.text, answer.text[-2000:]


def approve_when_asked(layout: Layout, text: str, user: str, failures: list[str]) -> None:
    """If ``text`` shows the device link, approve it as ``user`` in the background (the login waits)."""
    asked = ASKED.search(text)
    if not asked:
        return

    def run() -> None:
        try:
            approve(layout, asked[1], user)
        except (AssertionError, requests.RequestException) as exc:
            failures.append(str(exc))
    threading.Thread(target=run, daemon=True).start()


def test_a_session_renews_its_token_without_a_new_login(layout: Layout) -> None:
    failures: list[str] = []
    lake = session.login(layout, lambda text: approve_when_asked(layout, text, "alice", failures))
    assert not failures
    first = lake.frame("SELECT count(*) AS n FROM iceberg.snds.hospital_stays")
    lake.tokens.expires_at = 0.0  # as if the 5 minutes were over
    again = lake.frame("SELECT count(*) AS n FROM iceberg.snds.hospital_stays")
    assert lake.tokens.renewals == 1
    assert list(first.columns) == ["n"] and first.equals(again) and int(first["n"][0]) > 0
    lake.tokens.refresh = "not-a-refresh-token"
    lake.tokens.expires_at = 0.0
    with pytest.raises(SantelakeError, match="log in again"):
        lake.frame("SELECT 1")


def test_the_notebook_logs_in_and_answers_with_frames(layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("SANTELAKE_STATE_DIR", str(layout.settings.state_dir))
    failures: list[str] = []

    class Researcher(NotebookClient):  # type: ignore[misc]
        """Runs the notebook and, when it shows the device link, approves it as alice would."""

        def output(self, outs: list[Any], msg: dict[str, Any], display_id: str | None, cell_index: int) -> Any:
            text = msg.get("content", {}).get("text", "")
            if isinstance(text, str):
                approve_when_asked(layout, text, "alice", failures)
            return super().output(outs, msg, display_id, cell_index)

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    Researcher(notebook, timeout=300, kernel_name="python3").execute()
    assert not failures
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"], outputs
    assert any("approve the code" in o.get("text", "") for o in outputs)
    frame = next(o["data"]["text/plain"] for o in outputs if "stays" in o.get("data", {}).get("text/plain", ""))
    assert "persons" in frame and re.search(r"\b20(19|2\d)\b", frame), frame
    columns = next(o["data"]["text/plain"] for o in outputs if "person_id" in o.get("data", {}).get("text/plain", ""))
    # SELECT * as alice: her project's four columns of beneficiaries, none other.
    assert columns.replace("\n", "").replace(" ", "") == \
        "['person_id','birth_month','sex_code','residence_department']", columns
