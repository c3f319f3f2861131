"""The pseudonymisation key: where it comes from and how it is checked.

Precedence, lowest first: ``SANTELAKE_PSEUDONYM_KEY`` (the key itself) or
``SANTELAKE_PSEUDONYM_KEY_FILE`` (a path to it), then a path passed by the caller. Setting
both variables is refused: two keys would give two pseudonyms for one person. A key
written as hex text is decoded; anything else is used byte for byte (a file) or as UTF-8
(a variable). A key shorter than 32 bytes is refused: it is the only secret between a
pseudonym and the person.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

from santelake.errors import ConfigError

KEY_ENV = "SANTELAKE_PSEUDONYM_KEY"
KEY_FILE_ENV = "SANTELAKE_PSEUDONYM_KEY_FILE"
MIN_KEY_BYTES = 32
KEY_ID_LENGTH = 12
# Table property holding the id of the key a table's pseudonyms were made with.
KEY_ID_PROPERTY = "santelake.pseudonym-key-id"

_HEX = re.compile(rb"(?:[0-9a-fA-F]{2})+")
_MAKE_ONE = "make one with: python -c 'import secrets; print(secrets.token_hex(32))'"


def key_id_of(key: bytes) -> str:
    """A public name for the key: the first 12 hex characters of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:KEY_ID_LENGTH]


def decode_key(material: bytes, origin: str) -> bytes:
    """The key in ``material`` (hex text or raw bytes), checked for length; ``origin`` names where it was."""
    text = material.strip()
    if not text:
        raise ConfigError(f"{origin}: the pseudonymisation key is empty; {_MAKE_ONE}")
    is_hex = _HEX.fullmatch(text) is not None
    key = bytes.fromhex(text.decode("ascii")) if is_hex else material
    if len(key) < MIN_KEY_BYTES:
        decoded = " after hex decoding" if is_hex else ""
        raise ConfigError(
            f"{origin}: the pseudonymisation key is {len(key)} bytes{decoded}; "
            f"it needs at least {MIN_KEY_BYTES}; {_MAKE_ONE}"
        )
    return key


def _read(path: Path, origin: str) -> bytes:
    try:
        material = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{origin}: cannot read the pseudonymisation key: {exc.strerror}") from exc
    return decode_key(material, origin)


def load_key(path: Path | None = None, env: Mapping[str, str] | None = None) -> bytes:
    """The key from ``path`` if given, else from the environment; fails fast when absent or weak."""
    if path is not None:
        return _read(path, f"key file {path}")
    env = os.environ if env is None else env
    value, file = env.get(KEY_ENV), env.get(KEY_FILE_ENV)
    if value is not None and file is not None:
        raise ConfigError(f"both {KEY_ENV} and {KEY_FILE_ENV} are set; set only one")
    if file is not None:
        return _read(Path(file), f"{KEY_FILE_ENV}={file}")
    if value is not None:
        return decode_key(value.encode("utf-8"), KEY_ENV)
    raise ConfigError(f"no pseudonymisation key: set {KEY_FILE_ENV} (a path) or {KEY_ENV}; {_MAKE_ONE}")
