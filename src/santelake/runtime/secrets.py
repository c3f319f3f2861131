"""Generated secrets, one 0600 file each under ``<state>/secrets``.

A secret is made once, on first use, and read back afterwards; nothing defaults to an
empty string. An operator may provide a secret instead through ``SANTELAKE_SECRET_<NAME>``
(the value) or ``SANTELAKE_SECRET_<NAME>_FILE`` (a path), which wins over the file.
"""

from __future__ import annotations

import os
import secrets as _random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from santelake.errors import ConfigError
from santelake.files import write_private


def env_name(name: str) -> str:
    """The variable that gives secret ``name``; with ``_FILE`` appended, a path to it."""
    return "SANTELAKE_SECRET_" + name.upper().replace("-", "_")


def provided(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """Secret ``name`` as given through the environment (value, else file), None when not given."""
    env = os.environ if env is None else env
    env_key = env_name(name)
    if env_key in env:
        return _require(env[env_key], env_key)
    if env_key + "_FILE" in env:
        source = Path(env[env_key + "_FILE"])
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{source} (from {env_key}_FILE): cannot read the secret: {exc.strerror}") from exc
        return _require(text.strip(), str(source))
    return None


class SecretStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        return self.directory / name

    def get(self, name: str, *, length: int = 32, generate: Callable[[], str] | None = None) -> str:
        """The secret called ``name``, generating it the first time (``generate`` picks the form)."""
        given = provided(name)
        if given is not None:
            return given
        path = self.path(name)
        if path.exists():
            return _require(path.read_text(encoding="utf-8").strip(), str(path))
        value = generate() if generate is not None else _random.token_urlsafe(length)
        write_private(path, value + "\n")
        return value

    def file(self, name: str, **kwargs: Any) -> Path:
        """A file holding secret ``name`` (generated as ``get`` does): the one given through
        ``..._FILE``, else the store's own, written from the value given in the environment if any."""
        env_file = os.environ.get(env_name(name) + "_FILE")
        if env_file:
            return Path(env_file)
        value = self.get(name, **kwargs)
        path = self.path(name)
        if not path.exists() or path.read_text(encoding="utf-8").strip() != value:
            write_private(path, value + "\n")
        return path


def _require(value: str, origin: str) -> str:
    if not value:
        raise ConfigError(f"{origin}: secret is empty; give it a value or remove it to have one generated")
    return value
