from pathlib import Path

import pytest

from santelake.config import SETTINGS_FILE, load_settings
from santelake.errors import ConfigError


def test_precedence_is_file_then_env_then_explicit(tmp_path: Path) -> None:
    (tmp_path / SETTINGS_FILE).write_text("trino_port = 1001\nminio_port = 1002\npostgres_port = 1003\n")
    env = {"SANTELAKE_STATE_DIR": str(tmp_path), "SANTELAKE_MINIO_PORT": "2002", "SANTELAKE_POSTGRES_PORT": "2003"}
    settings = load_settings({"postgres_port": 3003}, env=env)
    assert settings.trino_port == 1001
    assert settings.minio_port == 2002
    assert settings.postgres_port == 3003
    assert settings.state_dir == tmp_path.resolve()


def test_defaults_listen_on_loopback(tmp_path: Path) -> None:
    settings = load_settings({"state_dir": tmp_path}, env={})
    assert settings.bind_host == "127.0.0.1"
    assert len(set(settings.ports().values())) == len(settings.ports())


def test_unknown_key_in_file_names_file_and_key(tmp_path: Path) -> None:
    (tmp_path / SETTINGS_FILE).write_text("trino_prot = 1\n")
    with pytest.raises(ConfigError, match=r"santelake\.toml: unknown setting 'trino_prot'"):
        load_settings({"state_dir": tmp_path}, env={})


def test_malformed_env_value_names_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SANTELAKE_TRINO_PORT"):
        load_settings({"state_dir": tmp_path}, env={"SANTELAKE_TRINO_PORT": "eighty"})


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    (tmp_path / SETTINGS_FILE).write_text("trino_port = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({"state_dir": tmp_path}, env={})
