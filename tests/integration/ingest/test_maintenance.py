"""Table maintenance as docs/operations.md gives it: a data engineer compacts a loaded
table through Trino; nothing is lost, the declared sort order is honoured, loads go on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from santelake.ingest.load import Loader


def _files(table: Any) -> list[str]:
    return [task.file.file_path for task in table.scan().plan_files()]


def test_compaction_keeps_every_row_sorts_the_files_and_loads_go_on(
        scratch: tuple[Loader, str], extracts: Path, sql: Any, tmp_path: Path) -> None:
    loader, namespace = scratch
    loader.load("snds.beneficiaries", extracts / "beneficiaries.csv")
    # Two files of claims: each load writes its own files in every yearly partition.
    loader.load("snds.outpatient_claims", extracts / "outpatient_claims.csv")
    loader.load("snds.outpatient_claims", _renumbered(extracts / "outpatient_claims.csv", tmp_path / "more.csv", b"9"))
    identifier = loader.schemas["snds.outpatient_claims"].identifier
    before = loader.catalog.load_table(identifier)
    rows_before = before.scan().to_arrow().sort_by("claim_id")
    files_before = _files(before)
    assert len(files_before) > 6

    sql("dana", f"ALTER TABLE iceberg.{namespace}.outpatient_claims EXECUTE optimize")

    after = loader.catalog.load_table(identifier)
    assert after.current_snapshot().summary.operation.value == "replace"
    files_after = _files(after)
    assert len(files_after) <= 6 < len(files_before)  # one a year of care dates
    # The same rows and values (Trino's files read back as string, pyiceberg's as large_string).
    assert after.scan().to_arrow().sort_by("claim_id").cast(rows_before.schema).equals(rows_before)
    for path in files_after:  # each file follows the table's sort order: person, then care date
        with after.io.new_input(path).open(seekable=True) as stream:
            data = pq.read_table(stream, columns=["person_id", "care_date"])
        keys = list(zip(data["person_id"].to_pylist(), data["care_date"].to_pylist(), strict=True))
        assert keys == sorted(keys), path

    # The files' records still make a reload a no-op, and a new file loads on top.
    assert loader.load("snds.outpatient_claims", extracts / "outpatient_claims.csv").status == "already-published"
    result = loader.load("snds.outpatient_claims", _renumbered(extracts / "outpatient_claims.csv",
                                                                tmp_path / "newer.csv", b"8"))
    assert result.status == "published" and result.rows_published == rows_before.num_rows // 2
    claims = loader.catalog.load_table(identifier).scan().to_arrow()["claim_id"]
    assert len(claims) == pc.count_distinct(claims).as_py() == rows_before.num_rows * 3 // 2


def _renumbered(source: Path, target: Path, prefix: bytes) -> Path:
    """The same claims under new claim ids (the first field starts with ``prefix``): not duplicates."""
    header, *lines = source.read_bytes().splitlines(keepends=True)
    target.write_bytes(header + b"".join(prefix + line[1:] for line in lines))
    return target
