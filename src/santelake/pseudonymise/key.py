"""The pseudonymisation key: where it comes from and how it is checked.

Precedence, lowest first: ``SANTELAKE_PSEUDONYM_KEY`` (the key itself) or
``SANTELAKE_PSEUDONYM_KEY_FILE`` (a path to it), then a path passed by the caller. Setting
both variables is refused: two keys would give two pseudonyms for one person. A key
written as hex text is decoded; anything else is used byte for byte (a file) or as UTF-8
(a variable). A key shorter than 32 bytes is refused: it is the only secret between a
pseudonym and the person.

After a re-keying (``santelake.pseudonymise.rekey``) the same sources hold a key chain:
one hex key per line, oldest first. Pseudonyms are then made with every key in turn.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from santelake.errors import ConfigError
from santelake.files import write_private

KEY_ENV = "SANTELAKE_PSEUDONYM_KEY"
KEY_FILE_ENV = "SANTELAKE_PSEUDONYM_KEY_FILE"
MIN_KEY_BYTES = 32
KEY_ID_LENGTH = 12
# Table property holding the id of the key (chain) a table's pseudonyms were made with.
KEY_ID_PROPERTY = "santelake.pseudonym-key-id"
# Joins the key ids of a chain, oldest first: a chain's id names every key in it.
CHAIN_ID_SEPARATOR = "+"

_HEX = re.compile(rb"(?:[0-9a-fA-F]{2})+")
_MAKE_ONE = "make one with: python -c 'import secrets; print(secrets.token_hex(32))'"


def key_id_of(key: bytes) -> str:
    """A public name for the key: the first 12 hex characters of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:KEY_ID_LENGTH]


def chain_id_of(keys: Sequence[bytes]) -> str:
    """The id of a key chain, oldest key first; a chain of one key has that key's own id."""
    if not keys:
        raise ValueError("a key chain holds at least one key")
    return CHAIN_ID_SEPARATOR.join(key_id_of(key) for key in keys)


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


def decode_key_chain(material: bytes, origin: str) -> tuple[bytes, ...]:
    """The keys in ``material``, oldest first: one hex key per line, or a single key as ``decode_key`` reads it."""
    lines = [(number, line.strip()) for number, line in enumerate(material.splitlines(), 1) if line.strip()]
    # A raw binary key may hold newline bytes; only hex text on its first line makes a chain.
    if len(lines) < 2 or _HEX.fullmatch(lines[0][1]) is None:
        return (decode_key(material, origin),)
    keys: list[bytes] = []
    for number, line in lines:
        where = f"{origin}: line {number}"
        if _HEX.fullmatch(line) is None:
            raise ConfigError(f"{where}: a key chain holds one hex key per line, oldest first; this line is not hex")
        key = decode_key(line, where)
        if key in keys:
            raise ConfigError(f"{where}: the key chain holds key {key_id_of(key)} twice; each key may appear once")
        keys.append(key)
    return tuple(keys)


def _material(path: Path | None, env: Mapping[str, str] | None) -> tuple[bytes, str]:
    """The key text and where it came from, by the precedence above."""
    if path is not None:
        return _read(path, f"key file {path}"), f"key file {path}"
    env = os.environ if env is None else env
    value, file = env.get(KEY_ENV), env.get(KEY_FILE_ENV)
    if value is not None and file is not None:
        raise ConfigError(f"both {KEY_ENV} and {KEY_FILE_ENV} are set; set only one")
    if file is not None:
        return _read(Path(file), f"{KEY_FILE_ENV}={file}"), f"{KEY_FILE_ENV}={file}"
    if value is not None:
        return value.encode("utf-8"), KEY_ENV
    raise ConfigError(f"no pseudonymisation key: set {KEY_FILE_ENV} (a path) or {KEY_ENV}; {_MAKE_ONE}")


def _read(path: Path, origin: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{origin}: cannot read the pseudonymisation key: {exc.strerror}") from exc


def load_key_chain(path: Path | None = None, env: Mapping[str, str] | None = None) -> tuple[bytes, ...]:
    """The key chain, oldest key first, from ``path`` if given, else from the environment."""
    return decode_key_chain(*_material(path, env))


def write_key_chain(path: Path, keys: Sequence[bytes]) -> None:
    """Replace the file at ``path`` with ``keys`` as a chain (hex, one a line, oldest first), durably."""
    write_private(path, "".join(key.hex() + "\n" for key in keys))
    # Pseudonyms are about to depend on the new key: it must survive a crash.
    for synced in (path, path.parent):
        descriptor = os.open(synced, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def load_key(path: Path | None = None, env: Mapping[str, str] | None = None) -> bytes:
    """The key from ``path`` if given, else from the environment; fails fast when absent, weak or a chain."""
    material, origin = _material(path, env)
    chain = decode_key_chain(material, origin)
    if len(chain) > 1:
        raise ConfigError(f"{origin}: holds a key chain of {len(chain)} keys ({chain_id_of(chain)}), not one key")
    return chain[0]
