"""Row rules: which rows of a batch break a rule, after the schema's transforms.

Two kinds, both evaluated with Arrow compute on whole batches:
- rules derived from the schema file (a required column must not be null);
- per-source rules below (code formats, date order, amounts, a known person).
A row breaking any rule goes to quarantine with the rule's id; the same rules are the
Great Expectations suite of the table (see ``ingest/expectations.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from santelake.schema import TableSchema

Violations = Callable[[pa.Table], pa.Array]

ICD10 = r"^[A-Z][0-9]{2}[0-9A-Z]{0,2}$"
ICD10_LIST = r"^[A-Z][0-9]{2}[0-9A-Z]{0,2}(\|[A-Z][0-9]{2}[0-9A-Z]{0,2})*$"
ATC = r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$"
CIP13 = r"^[0-9]{13}$"
FINESS = r"^(?:[0-9]{2}|2[AB])[0-9]{7}$"
GHM = r"^[0-9]{2}[A-Z][0-9]{2}[0-9A-Z]$"
RPPS = r"^[0-9]{11}$"
EARLIEST = dt.date(1900, 1, 1)
# The value of each hex digit's byte (0-9, a-f, A-F).
_HEX_VALUE = np.zeros(256, dtype=np.uint8)
_HEX_VALUE[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX_VALUE[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX_VALUE[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)


@dataclass(frozen=True)
class RowRule:
    id: str
    description: str
    violations: Violations
    # For the expectation suite: (kind, columns, arguments).
    expectation: tuple[str, tuple[str, ...], dict[str, object]]

    @property
    def columns(self) -> tuple[str, ...]:
        """The lake columns the rule reads."""
        return self.expectation[1]


def _filled(mask: pa.Array | pa.ChunkedArray) -> pa.Array:
    return pc.fill_null(mask, False)


def not_null(column: str) -> RowRule:
    return RowRule(f"{column}.not_null", f"{column} must be present",
                   lambda t: pc.is_null(t[column]), ("not_null", (column,), {}))


def matches(column: str, pattern: str, name: str) -> RowRule:
    return RowRule(f"{column}.{name}", f"{column} must be a valid {name} code",
                   lambda t: _filled(pc.invert(pc.match_substring_regex(t[column], pattern))),
                   ("regex", (column,), {"regex": pattern}))


def between(column: str, low: object, high: object) -> RowRule:
    def check(t: pa.Table) -> pa.Array:
        values = t[column]
        return _filled(pc.or_(pc.less(values, pa.scalar(low, values.type)),
                              pc.greater(values, pa.scalar(high, values.type))))

    return RowRule(f"{column}.range", f"{column} must lie between {low} and {high}", check,
                   ("between", (column,), {"min_value": low, "max_value": high}))


def ordered(first: str, second: str) -> RowRule:
    return RowRule(f"{first}<={second}", f"{first} must not be after {second}",
                   lambda t: _filled(pc.greater(t[first], t[second])),
                   ("pair_order", (first, second), {}))


def one_of(column: str, allowed: tuple[object, ...]) -> RowRule:
    return RowRule(f"{column}.allowed", f"{column} must be one of {', '.join(map(str, allowed))}",
                   lambda t: _filled(pc.invert(pc.is_in(t[column], pa.array(allowed, t[column].type)))),
                   ("in_set", (column,), {"value_set": list(allowed)}))


def claim_amounts() -> RowRule:
    """An ordinary claim line pays 0 <= reimbursed <= paid; a regularisation line (it names the line it
    corrects, never itself) the same amounts negated: paid <= reimbursed <= 0."""

    def check(t: pa.Table) -> pa.Array:
        paid, refunded, link = t["amount_paid"], t["amount_reimbursed"], t["corrected_claim_id"]
        zero = pa.scalar(0, paid.type)
        ordinary = pc.or_(pc.or_(pc.less(paid, zero), pc.less(refunded, pa.scalar(0, refunded.type))),
                          pc.greater(refunded, paid))
        correction = pc.or_(pc.or_(pc.greater(paid, zero), pc.greater(refunded, pa.scalar(0, refunded.type))),
                            pc.or_(pc.less(refunded, paid), pc.equal(link, t["claim_id"])))
        return _filled(pc.if_else(pc.is_null(link), ordinary, correction))

    return RowRule("amounts.sign", "an ordinary line has 0 <= amount_reimbursed <= amount_paid; a regularisation "
                   "line amount_paid <= amount_reimbursed <= 0 and corrects another claim_id", check,
                   ("claim_amounts", ("amount_paid", "amount_reimbursed", "corrected_claim_id", "claim_id"), {}))


class KnownPersons:
    """The person pseudonyms already in the lake, as a sorted array of 64-bit prefixes.

    Eight bytes a person keeps ten million persons in 80 MB; a prefix collision between two
    HMACs would let one unknown person through, with odds near 1e-12 at that size.
    """

    def __init__(self, pseudonyms: pa.Array | pa.ChunkedArray | Iterable[pa.Array | pa.ChunkedArray]) -> None:
        """From an array of pseudonyms, or from arrays one after another (a scan, streamed)."""
        if isinstance(pseudonyms, (pa.Array, pa.ChunkedArray)):
            pseudonyms = [pseudonyms]
        parts = [self._prefixes(part) for part in pseudonyms if len(part)]
        prefixes = np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
        del parts
        prefixes.sort()  # in place: building costs twice the final size, not four times
        if len(prefixes) > 1:
            prefixes = prefixes[np.concatenate(([True], prefixes[1:] != prefixes[:-1]))]
        self.prefixes = prefixes

    @staticmethod
    def _prefixes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        heads = pc.utf8_slice_codeunits(pc.fill_null(values, "0" * 16), 0, 16)
        if isinstance(heads, pa.ChunkedArray):
            heads = heads.combine_chunks()
        # Scans give large strings (64-bit offsets); 16 characters a value fit 32-bit ones.
        heads = heads.cast(pa.string())
        # 16 hex characters a value, decoded without a Python loop.
        text = np.frombuffer(heads.buffers()[2], dtype=np.uint8)[: 16 * len(heads)]
        offsets = np.frombuffer(heads.buffers()[1], dtype=np.int32)[: len(heads) + 1]
        if len(heads) and not np.all(np.diff(offsets) == 16):
            return np.array([int(h, 16) for h in heads.to_pylist()], dtype=np.uint64)
        chars = text[offsets[0]: offsets[0] + 16 * len(heads)].reshape(-1, 16)
        nibbles = _HEX_VALUE[chars]
        # Two hex digits a byte, the eight bytes read as one big-endian integer.
        packed = np.ascontiguousarray((nibbles[:, 0::2] << 4) | nibbles[:, 1::2])
        return np.asarray(packed.view(">u8").reshape(-1), dtype=np.uint64)

    def __len__(self) -> int:
        return len(self.prefixes)

    def release(self) -> None:
        """Give the memory back once the last batch is checked (8 bytes a person)."""
        self.prefixes = np.empty(0, dtype=np.uint64)

    def unknown(self, pseudonyms: pa.Array | pa.ChunkedArray) -> pa.Array:
        # Each distinct person once: claims name the same person many times.
        if isinstance(pseudonyms, pa.ChunkedArray):
            pseudonyms = pseudonyms.combine_chunks()
        # The loader hands them over dictionary-encoded already (see Pseudonymiser.pseudonymise_dictionary).
        encoded = pseudonyms if pa.types.is_dictionary(pseudonyms.type) else pc.dictionary_encode(pseudonyms)
        prefixes = self._prefixes(encoded.dictionary)
        if not len(self.prefixes):  # no person known yet (no beneficiary loaded): every row's person is unknown
            return pa.array(np.ones(len(encoded), dtype=bool))
        # Looked up in ascending order: each search starts where the last ended, in memory
        # the last one touched (4x faster than random order against millions of persons).
        order = np.argsort(prefixes)
        where = np.empty_like(order)
        where[order] = np.searchsorted(self.prefixes, prefixes[order])
        found = (where < len(self.prefixes)) & (self.prefixes[np.minimum(where, len(self.prefixes) - 1)] == prefixes)
        # A null person is not known either (the not-null rule names it too).
        return pc.fill_null(pc.take(pa.array(~found), encoded.indices), True)


def known_person(persons: KnownPersons) -> RowRule:
    return RowRule("person_id.known", "person_id must be a person of snds.beneficiaries",
                   lambda t: persons.unknown(t["person_id"]), ("known_person", ("person_id",), {}))


def source_rules(table: str) -> list[RowRule]:
    today = dt.date.today()
    care_dates = {"outpatient_claims": "care_date", "pharmacy_dispensations": "dispensing_date",
                  "gp_consultations": "consultation_date", "hospital_stays": "admission_date"}
    rules: list[RowRule] = []
    if table in care_dates:
        rules.append(between(care_dates[table], EARLIEST, today))
    if table == "beneficiaries":
        rules += [one_of("sex_code", (1, 2)), between("twin_rank", 1, 9), between("birth_month", EARLIEST, today)]
    elif table == "hospital_stays":
        rules += [matches("main_diagnosis", ICD10, "ICD-10"), matches("associated_diagnoses", ICD10_LIST, "ICD-10"),
                  matches("establishment_finess", FINESS, "FINESS"), matches("drg_code", GHM, "GHM"),
                  ordered("admission_date", "discharge_date")]
    elif table == "pharmacy_dispensations":
        rules += [matches("cip13_code", CIP13, "CIP13"), matches("atc_code", ATC, "ATC"),
                  between("quantity", 1, 100)]
    elif table == "outpatient_claims":
        rules += [between("amount_paid", -1_000_000, 1_000_000), claim_amounts()]
    elif table == "gp_consultations":
        rules += [matches("gp_rpps", RPPS, "RPPS"), one_of("consultation_type", ("G", "GS", "VG", "TC"))]
    return rules


def table_rules(declared: TableSchema, persons: KnownPersons | None) -> list[RowRule]:
    """Every row rule of a table: required columns, the source's rules, a known person."""
    rules = [not_null(c.name) for c in declared.lake_columns if c.required]
    rules += source_rules(declared.name)
    if persons is not None and any(c.name == "person_id" for c in declared.lake_columns):
        rules.append(known_person(persons))
    return rules
