"""Loading the pseudonymisation key: from a file or the environment, hex or raw, never weak or empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from santelake.errors import ConfigError
from santelake.pseudonymise import KEY_ENV, KEY_FILE_ENV, decode_key, key_id_of, load_key

RAW_KEY = bytes(range(32))
HEX_KEY = RAW_KEY.hex()


def test_key_id_is_the_start_of_the_key_sha256() -> None:
    # Computed independently: printf '\x00\x01...\x1f' | sha256sum
    assert key_id_of(RAW_KEY) == "630dcd2966c4"


def test_hex_key_file_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(HEX_KEY + "\n", encoding="ascii")

    assert load_key(path, env={}) == RAW_KEY


def test_raw_key_file_is_used_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "key"
    raw = bytes(range(200, 256)) + b"\n"
    path.write_bytes(raw)

    assert load_key(path, env={}) == raw


def test_key_from_environment_value() -> None:
    assert load_key(env={KEY_ENV: HEX_KEY}) == RAW_KEY
    passphrase = "a passphrase that is long enough to be a key"
    assert load_key(env={KEY_ENV: passphrase}) == passphrase.encode("utf-8")


def test_key_from_environment_file(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(HEX_KEY, encoding="ascii")

    assert load_key(env={KEY_FILE_ENV: str(path)}) == RAW_KEY


def test_explicit_path_wins_over_environment(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(HEX_KEY, encoding="ascii")

    assert load_key(path, env={KEY_ENV: "f" * 64}) == RAW_KEY


def test_both_variables_set_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="set only one"):
        load_key(env={KEY_ENV: HEX_KEY, KEY_FILE_ENV: str(tmp_path / "key")})


def test_no_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=f"set {KEY_FILE_ENV} .* or {KEY_ENV}"):
        load_key(env={})


@pytest.mark.parametrize("value", ["", "   ", "\n"])
def test_empty_key_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="key is empty"):
        load_key(env={KEY_ENV: value})


def test_short_hex_key_is_refused() -> None:
    # 32 hex characters are only 16 bytes.
    with pytest.raises(ConfigError, match="16 bytes after hex decoding; it needs at least 32"):
        load_key(env={KEY_ENV: "ab" * 16})


def test_short_raw_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"short secret")

    with pytest.raises(ConfigError, match=f"key file {path}: the pseudonymisation key is 12 bytes"):
        load_key(path, env={})


def test_missing_key_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"

    with pytest.raises(ConfigError, match=f"{KEY_FILE_ENV}={missing}: cannot read"):
        load_key(env={KEY_FILE_ENV: str(missing)})


def test_decode_key_names_its_origin() -> None:
    with pytest.raises(ConfigError, match=r"^vault: "):
        decode_key(b"tiny", "vault")
