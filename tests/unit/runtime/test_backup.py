"""The local backup's parts that need no stack: the sealed secrets, and the refusals that come
before anything changes. tests/integration/test_local_backup.py runs the whole of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from santelake.config import load_settings
from santelake.deploy.backup import FORMAT, MANIFEST
from santelake.errors import ConfigError
from santelake.runtime.backup import PASSPHRASE, passphrase, restore_fresh, seal, unseal
from santelake.runtime.layout import Layout
from santelake.runtime.secrets import env_name

SECRET = "correct horse battery staple"
FILES = {"pseudonym-key": b"00ff" * 16 + b"\n", "postgres-superuser-password": b"s3cret\n"}


def test_sealed_secrets_open_with_the_passphrase_only() -> None:
    blob = seal(FILES, SECRET)
    assert b"00ff" not in blob and b"s3cret" not in blob
    assert unseal(blob, SECRET, "x") == FILES
    with pytest.raises(ConfigError, match="passphrase is not the backup's"):
        unseal(blob, SECRET + "!", "secrets.enc")


def test_an_altered_header_or_ciphertext_is_refused() -> None:
    data = json.loads(seal(FILES, SECRET))
    for field, value in (("n", 2 ** 14), ("ciphertext", data["ciphertext"][:-8] + "AAAAAAA=")):
        with pytest.raises(ConfigError, match=r"secrets\.enc"):
            unseal(json.dumps(dict(data, **{field: value})).encode(), SECRET, "secrets.enc")
    with pytest.raises(ConfigError, match="not a sealed secrets file"):
        unseal(b"{}", SECRET, "secrets.enc")


def test_the_passphrase_is_required_and_not_short(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(env_name(PASSPHRASE), raising=False)
    monkeypatch.delenv(env_name(PASSPHRASE) + "_FILE", raising=False)
    with pytest.raises(ConfigError, match=env_name(PASSPHRASE)):
        passphrase()
    monkeypatch.setenv(env_name(PASSPHRASE), "short")
    with pytest.raises(ConfigError, match="at least 16"):
        passphrase()
    monkeypatch.setenv(env_name(PASSPHRASE), SECRET)
    assert passphrase() == SECRET


def test_a_restore_into_a_state_folder_with_data_changes_nothing(tmp_path: Path) -> None:
    layout = Layout(load_settings({"state_dir": tmp_path / "state"}, env={}))
    version = tmp_path / "state" / "postgres" / "data" / "PG_VERSION"
    version.parent.mkdir(parents=True)
    version.write_text("17\n")
    with pytest.raises(ConfigError, match="fresh state folder"):
        restore_fresh(layout, tmp_path / "backup")
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["postgres"]


def test_a_release_backup_is_not_restored_as_a_local_one(tmp_path: Path) -> None:
    layout = Layout(load_settings({"state_dir": tmp_path / "state"}, env={}))
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / MANIFEST).write_text(json.dumps({"format": FORMAT, "finished": "2026-12-02T00:00:00+00:00",
                                               "namespace": "ns", "release": "santelake",
                                               "databases": {}, "buckets": {}}))
    with pytest.raises(ConfigError, match="not a backup of a local stack"):
        restore_fresh(layout, backup)
