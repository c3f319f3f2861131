import stat
from pathlib import Path

import pytest

from santelake.errors import ConfigError
from santelake.runtime.secrets import SecretStore


def test_secret_is_generated_once_and_private(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets")
    first = store.get("db-password")
    assert len(first) >= 32
    assert store.get("db-password") == first
    mode = stat.S_IMODE((tmp_path / "secrets" / "db-password").stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700
    assert store.get("other") != first


def test_environment_wins_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SecretStore(tmp_path)
    store.get("db-password")
    monkeypatch.setenv("SANTELAKE_SECRET_DB_PASSWORD", "from-the-environment")
    assert store.get("db-password") == "from-the-environment"


def test_secret_file_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "provided"
    source.write_text("from-a-file\n")
    monkeypatch.setenv("SANTELAKE_SECRET_API_KEY_FILE", str(source))
    assert SecretStore(tmp_path / "s").get("api-key") == "from-a-file"


def test_empty_secret_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANTELAKE_SECRET_DB_PASSWORD", "")
    with pytest.raises(ConfigError, match="SANTELAKE_SECRET_DB_PASSWORD: secret is empty"):
        SecretStore(tmp_path).get("db-password")
