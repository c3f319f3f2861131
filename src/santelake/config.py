"""Settings of one santelake installation, loaded in one place.

Precedence, lowest first: built-in defaults < the settings file (``santelake.toml`` in the
state directory) < environment variables (``SANTELAKE_*``) < explicit overrides passed by
the caller (CLI flags). Every key is a named constant below; an unknown key in the file or
a malformed value fails fast with the key's name.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from santelake.errors import ConfigError

ENV_PREFIX = "SANTELAKE_"
SETTINGS_FILE = "santelake.toml"

STATE_DIR = "state_dir"
CACHE_DIR = "cache_dir"
BIND_HOST = "bind_host"
POSTGRES_PORT = "postgres_port"
MINIO_PORT = "minio_port"
KEYCLOAK_PORT = "keycloak_port"
KEYCLOAK_MANAGEMENT_PORT = "keycloak_management_port"
TRINO_PORT = "trino_port"
TRINO_INTERNAL_PORT = "trino_internal_port"
AIRFLOW_PORT = "airflow_port"
AUDIT_PORT = "audit_port"
TRINO_HEAP = "trino_heap"
KEYCLOAK_HEAP = "keycloak_heap"
JAVA_HOME = "java_home"
START_TIMEOUT = "start_timeout"


@dataclass(frozen=True)
class Settings:
    state_dir: Path = Path(".santelake")
    cache_dir: Path = Path.home() / ".cache" / "santelake"
    bind_host: str = "127.0.0.1"
    postgres_port: int = 15432
    minio_port: int = 19000
    keycloak_port: int = 18443
    keycloak_management_port: int = 19001
    trino_port: int = 18444
    trino_internal_port: int = 18081
    airflow_port: int = 18088
    audit_port: int = 18445
    catalogue_port: int = 18446
    trino_heap: str = "2G"
    keycloak_heap: str = "512m"
    java_home: Path | None = None
    start_timeout: int = 240

    @property
    def hostname(self) -> str:
        """The name clients use; certificates carry it and 127.0.0.1."""
        return "localhost"

    def ports(self) -> dict[str, int]:
        return {
            "postgres": self.postgres_port,
            "minio": self.minio_port,
            "keycloak": self.keycloak_port,
            "keycloak-management": self.keycloak_management_port,
            "trino": self.trino_port,
            "trino-internal": self.trino_internal_port,
            "airflow": self.airflow_port,
            "audit": self.audit_port,
            "catalogue": self.catalogue_port,
        }


_FIELD_TYPES = {f.name: f.type for f in fields(Settings)}


def _coerce(key: str, value: Any, origin: str) -> Any:
    kind = _FIELD_TYPES[key]
    try:
        if kind == "int":
            number = int(value)
            if number <= 0:
                raise ValueError("must be positive")
            return number
        if kind in ("Path", "Path | None"):
            return Path(str(value)).expanduser()
        return str(value)
    except ValueError as exc:
        raise ConfigError(f"{origin}: setting {key!r} has invalid value {value!r} ({exc})") from exc


def load_settings(overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from defaults, file, environment and overrides, in that order."""
    env = os.environ if env is None else env
    explicit = {k: v for k, v in (overrides or {}).items() if v is not None}
    for key in explicit:
        if key not in _FIELD_TYPES:
            raise ConfigError(f"unknown setting {key!r}")

    state_dir = explicit.get(STATE_DIR) or env.get(ENV_PREFIX + STATE_DIR.upper()) or Settings.state_dir
    values: dict[str, Any] = {}
    settings_file = Path(str(state_dir)).expanduser() / SETTINGS_FILE
    if settings_file.exists():
        try:
            from_file = tomllib.loads(settings_file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{settings_file}: not valid TOML: {exc}") from exc
        for key, value in from_file.items():
            if key not in _FIELD_TYPES:
                raise ConfigError(f"{settings_file}: unknown setting {key!r}; known: {sorted(_FIELD_TYPES)}")
            values[key] = _coerce(key, value, str(settings_file))
    for key in _FIELD_TYPES:
        env_key = ENV_PREFIX + key.upper()
        if env_key in env and env[env_key] != "":
            values[key] = _coerce(key, env[env_key], f"environment variable {env_key}")
    for key, value in explicit.items():
        values[key] = _coerce(key, value, f"option {key}")
    settings = replace(Settings(), **values)
    return replace(settings, state_dir=settings.state_dir.resolve(), cache_dir=settings.cache_dir.resolve())
