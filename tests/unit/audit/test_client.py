"""santelake's own events: refused when unknown, announced when no receiver is set, never silent."""

from __future__ import annotations

from pathlib import Path

import pytest

from santelake.audit.client import AuditUnavailableError, record


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown audit event kind 'load\.maybe'"):
        record("load.maybe", "x", {}, env={})


def test_without_a_receiver_nothing_is_sent_and_a_warning_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert record("load", "incoming/x.csv", {}, who="tester", env={}) is None
    assert "is not recorded in an audit trail" in capsys.readouterr().err


def test_an_unreachable_receiver_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import santelake.audit.client as client

    monkeypatch.setattr(client, "DELAYS", (0.01,))
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    env = {client.URL_ENV: "https://127.0.0.1:9", client.TOKEN_FILE_ENV: str(token)}
    with pytest.raises(AuditUnavailableError, match=r"receiver at https://127.0.0.1:9 did not record this load"):
        record("load", "incoming/x.csv", {}, who="tester", env=env)
