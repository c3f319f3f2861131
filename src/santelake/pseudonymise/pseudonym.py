"""Keyed pseudonyms of direct identifiers: hex HMAC-SHA-256 under a secret key.

A pseudonym is stable (the same identifier and key give the same pseudonym, so a person
links across tables and loads) and cannot be reversed or recomputed without the key, even
by someone who can list every possible NIR: a plain hash of a NIR could be.

A NIR is 13 characters plus a 2-digit control key computed from them. Sources disagree on
whether they carry the control key, and a mistyped control key says nothing about who the
person is, so the pseudonym is made from the 13-character body only: a person keeps one
pseudonym whether or not a source carries the control key.

After a re-keying the pseudonymiser holds a key chain, oldest key first, and applies each
key in turn to the hex text of the step before: HMAC(K2, HMAC(K1, x)). That is what the
re-keying did to the pseudonyms already in the lake, so new rows link to old ones.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from santelake.errors import ConfigError
from santelake.pseudonymise.key import MIN_KEY_BYTES, chain_id_of, key_id_of

# Sex/category, year, month, department of birth (2A/2B in Corsica), commune, order; then the control key.
NIR_BODY = r"[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{6}"
_NIR = re.compile(rf"({NIR_BODY})(?:[0-9]{{2}})?")
# Values that normalise_identifier only upper-cases and cuts: Arrow compute gives the same result.
_PLAIN = r"^[0-9A-Za-z]+$"
_SHA256_BLOCK = 64


def normalise_identifier(value: str) -> str:
    """The form that is hashed: no whitespace, and a NIR reduced to its 13-character body."""
    compact = "".join(value.split())
    nir = _NIR.fullmatch(compact.upper())
    return nir[1] if nir else compact


class Pseudonymiser:
    """Makes pseudonyms under one key or a key chain.

    ``key`` is the newest key, ``earlier_keys`` the ones before it, oldest first. ``key_id``
    must be the chain's id (the key's own id for a single key), which guards against a
    swapped or missing key.
    """

    def __init__(self, key: bytes, key_id: str, *, earlier_keys: Sequence[bytes] = ()) -> None:
        keys = (*earlier_keys, key)
        for each in keys:
            if len(each) < MIN_KEY_BYTES:
                raise ConfigError(
                    f"the pseudonymisation key is {len(each)} bytes; it needs at least {MIN_KEY_BYTES}"
                )
        if key_id != chain_id_of(keys):
            raise ConfigError(
                f"the pseudonymisation key has id {chain_id_of(keys)}, not the expected {key_id}; "
                "pseudonyms made with another key would not link to the ones already loaded"
            )
        # HMAC's inner and outer SHA-256 states, keyed once and copied per value (RFC 2104):
        # the hmac module's wrapper objects cost more than the hashing of a short identifier.
        self._keyed = tuple(_keyed_states(each) for each in keys)
        self.key_id = key_id
        self.key_ids = tuple(key_id_of(each) for each in keys)

    @classmethod
    def from_key(cls, key: bytes) -> Pseudonymiser:
        return cls(key, key_id_of(key))

    @classmethod
    def from_chain(cls, keys: Sequence[bytes]) -> Pseudonymiser:
        """The pseudonymiser of a key chain, oldest key first."""
        if not keys:
            raise ConfigError("a key chain holds at least one key")
        return cls(keys[-1], chain_id_of(keys), earlier_keys=keys[:-1])

    def __repr__(self) -> str:
        return f"Pseudonymiser(key_id={self.key_id!r})"

    def pseudonymise(self, value: str) -> str:
        """64 hex characters; raises ValueError on an identifier that is blank once normalised."""
        text = normalise_identifier(value)
        if not text:
            raise ValueError("cannot pseudonymise a blank identifier")
        return self._hmac(text)

    def _hmac(self, text: str) -> str:
        return self._hmac_all([text])[0]

    def _hmac_all(self, texts: list[str]) -> list[str]:
        """The hex HMAC of each text under each key of the chain in turn (one loop a key, no call per value)."""
        for inner_state, outer_state in self._keyed:
            hexes = []
            for text in texts:
                inner = inner_state.copy()
                inner.update(text.encode("utf-8"))
                outer = outer_state.copy()
                outer.update(inner.digest())
                hexes.append(outer.hexdigest())
            texts = hexes
        return texts

    def pseudonymise_array(self, values: pa.Array) -> pa.Array:
        """Pseudonymise every value of a string array; nulls and blank values give null."""
        return self.pseudonymise_dictionary(values).dictionary_decode()

    def pseudonymise_dictionary(self, values: pa.Array) -> pa.DictionaryArray:
        """``pseudonymise_array`` as a dictionary array: each distinct pseudonym once, and an index per value.

        Null and blank values have a null index. Checks of the persons (known, not null) read
        the few distinct pseudonyms instead of hashing 64 characters a row again.
        """
        text = values if pa.types.is_string(values.type) else values.cast(pa.string())
        # Claims repeat the same person many times: hash each distinct value once.
        encoded = pc.dictionary_encode(text)
        normalised = _normalise_array(encoded.dictionary)
        # A blank identifier becomes null, so its index is null and the dictionary holds only pseudonyms.
        normalised = pc.if_else(pc.equal(normalised, ""), pa.scalar(None, pa.string()), normalised)
        hmac_once = pc.dictionary_encode(normalised)
        pseudonyms = pa.array(self._hmac_all(hmac_once.dictionary.to_pylist()), type=pa.string())
        return pa.DictionaryArray.from_arrays(pc.take(hmac_once.indices, encoded.indices), pseudonyms)


def _keyed_states(key: bytes) -> tuple[Any, Any]:
    """SHA-256 after HMAC's inner and outer padded keys: HMAC(key, m) = outer(inner(m))."""
    block = (hashlib.sha256(key).digest() if len(key) > _SHA256_BLOCK else key).ljust(_SHA256_BLOCK, b"\0")
    return (hashlib.sha256(bytes(b ^ 0x36 for b in block)), hashlib.sha256(bytes(b ^ 0x5C for b in block)))


def _normalise_array(values: pa.Array) -> pa.Array:
    """``normalise_identifier`` of each (non-null) value: in Arrow for plain ones, in Python for the rest."""
    plain = pc.fill_null(pc.match_substring_regex(values, _PLAIN), True)
    upper = pc.ascii_upper(values)
    nir = pc.fill_null(pc.match_substring_regex(upper, f"^{_NIR.pattern}$"), False)
    normalised = pc.if_else(nir, pc.utf8_slice_codeunits(upper, 0, 13), values)
    odd = pc.invert(plain)
    if pc.any(odd).as_py():
        fixed = [normalise_identifier(v) for v in pc.filter(values, odd).to_pylist()]
        normalised = pc.replace_with_mask(normalised, odd, pa.array(fixed, pa.string()))
    return normalised
