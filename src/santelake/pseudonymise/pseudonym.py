"""Keyed pseudonyms of direct identifiers: hex HMAC-SHA-256 under a secret key.

A pseudonym is stable (the same identifier and key give the same pseudonym, so a person
links across tables and loads) and cannot be reversed or recomputed without the key, even
by someone who can list every possible NIR: a plain hash of a NIR could be.

A NIR is 13 characters plus a 2-digit control key computed from them. Sources disagree on
whether they carry the control key, and a mistyped control key says nothing about who the
person is, so the pseudonym is made from the 13-character body only: a person keeps one
pseudonym whether or not a source carries the control key.
"""

from __future__ import annotations

import hashlib
import hmac
import re

import pyarrow as pa
import pyarrow.compute as pc

from santelake.errors import ConfigError
from santelake.pseudonymise.key import MIN_KEY_BYTES, key_id_of

# Sex/category, year, month, department of birth (2A/2B in Corsica), commune, order; then the control key.
_NIR = re.compile(r"([0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{6})(?:[0-9]{2})?")


def normalise_identifier(value: str) -> str:
    """The form that is hashed: no whitespace, and a NIR reduced to its 13-character body."""
    compact = "".join(value.split())
    nir = _NIR.fullmatch(compact.upper())
    return nir[1] if nir else compact


class Pseudonymiser:
    """Makes pseudonyms under one key; ``key_id`` must be the key's id, which guards against a swapped key."""

    def __init__(self, key: bytes, key_id: str) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(
                f"the pseudonymisation key is {len(key)} bytes; it needs at least {MIN_KEY_BYTES}"
            )
        if key_id != key_id_of(key):
            raise ConfigError(
                f"the pseudonymisation key has id {key_id_of(key)}, not the expected {key_id}; "
                "pseudonyms made with another key would not link to the ones already loaded"
            )
        self._key = key
        # HMAC's keyed state, copied per value: about twice as fast as a new HMAC each time.
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)
        self.key_id = key_id

    @classmethod
    def from_key(cls, key: bytes) -> Pseudonymiser:
        return cls(key, key_id_of(key))

    def __repr__(self) -> str:
        return f"Pseudonymiser(key_id={self.key_id!r})"

    def pseudonymise(self, value: str) -> str:
        """64 hex characters; raises ValueError on an identifier that is blank once normalised."""
        normalised = normalise_identifier(value)
        if not normalised:
            raise ValueError("cannot pseudonymise a blank identifier")
        keyed = self._keyed.copy()
        keyed.update(normalised.encode("utf-8"))
        return keyed.hexdigest()

    def pseudonymise_array(self, values: pa.Array) -> pa.Array:
        """Pseudonymise every value of a string array; nulls and blank values give null."""
        text = values if pa.types.is_string(values.type) else values.cast(pa.string())
        # Claims repeat the same person many times: hash each distinct value once.
        encoded = pc.dictionary_encode(text)
        pseudonyms = pa.array(
            [
                None if not normalise_identifier(v) else self.pseudonymise(v)
                for v in encoded.dictionary.to_pylist()
            ],
            type=pa.string(),
        )
        return pc.take(pseudonyms, encoded.indices)
