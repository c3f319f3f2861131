"""The exact comparisons of the identity check across loads (ingest/identity.py); the check itself
runs on the real catalog in tests/integration/ingest/test_identity.py."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from santelake.ingest.identity import _rows_with_keys, _same_rows


def test_rows_with_keys_compares_every_key_column_exactly() -> None:
    data = pa.table({"finess": ["a", "a", "b", "b"], "stay": [1, 2, 1, 2], "x": [0, 0, 0, 0]})
    wanted = pa.table({"finess": ["a", "b", "c"], "stay": [2, 1, 1]})
    assert _rows_with_keys(data, ["finess", "stay"], wanted).tolist() == [False, True, True, False]
    assert not _rows_with_keys(data, ["finess", "stay"], wanted.slice(0, 0)).any()


def test_same_rows_treats_two_nulls_as_equal_and_compares_nested_values() -> None:
    left = pa.table({"death": pa.array([None, dt.date(2026, 3, 1), None, dt.date(2026, 3, 1)]),
                     "codes": pa.array([["I21"], ["I21", "E11"], None, []], pa.list_(pa.string()))})
    right = pa.table({"death": pa.array([None, dt.date(2026, 3, 1), dt.date(2026, 4, 1), dt.date(2026, 3, 1)]),
                      "codes": pa.array([["I21"], ["I21"], None, []], pa.list_(pa.string()))})
    same = _same_rows(left, right, ["death", "codes"])
    assert isinstance(same, np.ndarray)
    assert same.tolist() == [True, False, False, True]
