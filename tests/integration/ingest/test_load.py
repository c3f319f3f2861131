"""Loading files: published once, atomically, with bad rows quarantined and bad files refused."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from santelake.ingest import load as load_module
from santelake.ingest import runner
from santelake.ingest.errors import FileRejectedError, SourceFileError
from santelake.ingest.load import Loader


def _rows(loader: Loader, name: str) -> int:
    table = loader.catalog.load_table(loader.schemas[name].identifier)
    return 0 if table.current_snapshot() is None else int(table.scan().to_arrow().num_rows)


def _snapshots(loader: Loader, name: str) -> int:
    identifier = loader.schemas[name].identifier
    if not loader.catalog.table_exists(identifier):
        return 0
    return len(loader.catalog.load_table(identifier).metadata.snapshots)


def _copy(extracts: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copy(extracts / name, target)
    return target


def test_every_source_loads_and_a_reload_is_a_no_op(scratch: tuple[Loader, str], extracts: Path) -> None:
    loader, _ = scratch
    files = {s.name: s.source.file for s in runner.sources() if s.source is not None}
    assert not loader.is_recorded("snds.beneficiaries", extracts / "beneficiaries.csv")
    published = {}
    for source, name in files.items():
        result = loader.load(f"snds.{source}", extracts / name)
        assert loader.is_recorded(f"snds.{source}", extracts / name)
        assert result.status == "published", result
        assert result.rows_quarantined == 0
        assert Path(result.data_docs).is_file(), "the audit must leave its Data Docs"
        assert _rows(loader, f"snds.{source}") == result.rows_read == result.rows_published
        # Written in chunks of 200 rows, published by one snapshot: no time travel to half a file.
        assert _snapshots(loader, f"snds.{source}") == 1
        published[source] = result.rows_published
    assert max(published.values()) > loader.flush_rows, "some file must take several chunks"
    before = {s: _snapshots(loader, f"snds.{s}") for s in files}
    for source, name in files.items():
        again = loader.load(f"snds.{source}", extracts / name)
        assert again.status == "already-published"
    assert {s: _snapshots(loader, f"snds.{s}") for s in files} == before
    recorded = loader.catalog.load_table(loader.schemas["ops.ingested_files"].identifier).scan().to_arrow()
    assert recorded.num_rows == len(files)


def test_a_resent_file_is_answered_without_reading_every_known_person(
        scratch_loader: Callable[..., Loader], extracts: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A file found already loaded is answered before the known persons are read (they may be millions)."""
    loader = scratch_loader()
    # The beneficiaries in 12 extracts of their own, so their table holds 12 data files.
    header, *rows = (extracts / "beneficiaries.csv").read_bytes().splitlines(keepends=True)
    for part in range(12):
        extract = tmp_path / f"beneficiaries-{part:02d}.csv"
        extract.write_bytes(header + b"".join(rows[part::12]))
        assert loader.load("snds.beneficiaries", extract).status == "published"
    first = loader.load("snds.hospital_stays", extracts / "hospital_stays.csv")
    assert first.status == "published" and first.rows_published > 0
    files = len(loader.catalog.load_table(loader.schemas["snds.beneficiaries"].identifier).scan().plan_files())
    assert files >= 10
    # Each data file of the persons' read made slow, as a lake of millions of persons is: the real
    # read, only delayed (a large beneficiaries table is too slow to build in a test).
    real = load_module.file_by_file
    read: list[int] = []

    def slow(table: object, fields: tuple[str, ...]) -> Iterator[pa.RecordBatch]:
        for batch in real(table, fields):
            time.sleep(0.5)
            read.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(load_module, "file_by_file", slow)
    started = time.monotonic()
    again = loader.load("snds.hospital_stays", extracts / "hospital_stays.csv")
    took = time.monotonic() - started
    assert again.status == "already-published"
    assert len(read) < files, "the persons' read must not hold up a file already loaded"
    assert took < 0.5 * files, f"answered in {took:.1f} s: it waited for the whole read"


def test_same_person_has_one_pseudonym_across_sources(scratch: tuple[Loader, str], extracts: Path) -> None:
    loader, _ = scratch
    loader.load("snds.beneficiaries", extracts / "beneficiaries.csv")
    loader.load("snds.hospital_stays", extracts / "hospital_stays.csv")
    persons = set(loader.catalog.load_table(loader.schemas["snds.beneficiaries"].identifier)
                  .scan().to_arrow()["person_id"].to_pylist())
    stays = set(loader.catalog.load_table(loader.schemas["snds.hospital_stays"].identifier)
                .scan().to_arrow()["person_id"].to_pylist())
    assert stays and stays <= persons
    assert all(len(p) == 64 for p in persons)


def _structural_fault(path: Path, kind: str, extracts: Path) -> None:
    source = (extracts / "outpatient_claims.csv").read_bytes()
    lines = source.split(b"\n")
    if kind == "wrong delimiter":
        path.write_bytes(source.replace(b";", b","))
    elif kind == "missing column":
        path.write_bytes(b"\n".join(b";".join(line.split(b";")[:-1]) for line in lines))
    elif kind == "unexpected column":
        path.write_bytes(b"\n".join(line + b";x" if line else line for line in lines))
    elif kind == "truncated file":
        path.write_bytes(source[: len(source) // 2].rsplit(b";", 1)[0])
    elif kind == "empty file":
        path.write_bytes(b"")
    elif kind == "header only":
        path.write_bytes(lines[0] + b"\n")
    elif kind == "invalid bytes":
        path.write_bytes(source[:4000] + b"\xff\xfe\xfa" + source[4000:])
    elif kind == "wrong encoding":
        path.write_bytes(source.decode("utf-8").replace("1", "é", 3).encode("latin-1", errors="replace"))
    elif kind == "a line of 1 GB":
        with path.open("wb") as handle:
            handle.write(lines[0] + b"\n")
            handle.truncate(len(lines[0]) + 1 + (1 << 30))  # sparse: one 1 GiB line of NUL bytes


FAULTS = {
    "wrong delimiter": "wrong delimiter",
    "missing column": "missing column",
    "unexpected column": "undeclared column",
    "truncated file": "a row has 1 column",
    "empty file": "empty",
    "header only": "no rows",
    "invalid bytes": "not valid utf-8",
    "wrong encoding": "not valid utf-8",
    "a line of 1 GB": "longer than",
}


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_a_malformed_file_is_refused_with_its_reason_and_publishes_nothing(
    scratch: tuple[Loader, str], extracts: Path, tmp_path: Path, kind: str
) -> None:
    loader, _ = scratch
    loader.load("snds.beneficiaries", extracts / "beneficiaries.csv")
    path = tmp_path / "outpatient_claims.csv"
    _structural_fault(path, kind, extracts)
    with pytest.raises(SourceFileError, match=FAULTS[kind]) as caught:
        loader.load("snds.outpatient_claims", path)
    assert str(path) in str(caught.value)
    assert _rows(loader, "snds.outpatient_claims") == 0


def test_duplicate_rows_are_quarantined_and_the_rest_published(
    scratch: tuple[Loader, str], extracts: Path, tmp_path: Path
) -> None:
    loader, _ = scratch
    loader.load("snds.beneficiaries", extracts / "beneficiaries.csv")
    lines = (extracts / "outpatient_claims.csv").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "outpatient_claims.csv"
    path.write_text("\n".join([*lines, lines[5], lines[9]]) + "\n", encoding="utf-8")
    result = loader.load("snds.outpatient_claims", path)
    assert (result.rows_read, result.rows_published, result.rows_quarantined) == (len(lines) + 1, len(lines) - 1, 2)
    assert _rows(loader, "snds.outpatient_claims") == len(lines) - 1
    quarantine = loader.catalog.load_table(loader.schemas["ops.quarantine"].identifier).scan().to_arrow()
    assert sorted(quarantine["rule"].to_pylist()) == ["duplicate_row", "duplicate_row"]
    assert sorted(quarantine["row_number"].to_pylist()) == [len(lines), len(lines) + 1]
    assert all(len(ref) == 64 for ref in quarantine["raw_reference"].to_pylist())


def test_impossible_dates_are_quarantined_and_too_many_reject_the_file(
    scratch: tuple[Loader, str], extracts: Path, tmp_path: Path
) -> None:
    loader, _ = scratch
    loader.load("snds.beneficiaries", extracts / "beneficiaries.csv")
    raw = (extracts / "hospital_stays.csv").read_bytes().decode("latin-1").splitlines()
    header, rows = raw[0], raw[1:]

    def with_bad_dates(count: int) -> Path:
        changed = []
        for i, line in enumerate(rows):
            fields = line.split(";")
            if i < count:
                fields[3] = "31022023"  # 31 February
            changed.append(";".join(fields))
        path = tmp_path / f"hospital_stays_{count}.csv"
        path.write_bytes(("\n".join([header, *changed]) + "\n").encode("latin-1"))
        return path

    one = loader.load("snds.hospital_stays", with_bad_dates(1))
    assert one.rows_quarantined == 1 and one.rows_published == len(rows) - 1
    published = _rows(loader, "snds.hospital_stays")
    with pytest.raises(FileRejectedError, match=r"admission_date\.format"):
        loader.load("snds.hospital_stays", with_bad_dates(len(rows) // 2))
    assert _rows(loader, "snds.hospital_stays") == published
    files = loader.catalog.load_table(loader.schemas["ops.ingested_files"].identifier).scan().to_arrow()
    assert "rejected" in files["status"].to_pylist()


def test_typed_columns_quarantine_like_text_ones(scratch: tuple[Loader, str], extracts: Path,
                                                tmp_path: Path) -> None:
    """Claims' dates and codes are read typed: a date Python cannot hold and a code that makes
    the reader fall back to text are each quarantined, and every other row is published."""
    loader, _ = scratch
    loader.load("snds.beneficiaries", extracts / "beneficiaries.csv")
    lines = (extracts / "outpatient_claims.csv").read_text(encoding="utf-8").splitlines()
    rows = [line.split(";") for line in lines[1:]]
    rows[0][2] = "0000-01-01"  # EXE_SOI_DTD: parsed typed, out of range
    rows[-1][3] = "11x2"  # PRS_NAT_REF: not an integer
    path = tmp_path / "outpatient_claims.csv"
    path.write_text("\n".join([lines[0], *(";".join(row) for row in rows)]) + "\n", encoding="utf-8")

    result = loader.load("snds.outpatient_claims", path)

    assert (result.rows_quarantined, result.rows_published) == (2, len(rows) - 2)
    quarantine = loader.catalog.load_table(loader.schemas["ops.quarantine"].identifier).scan().to_arrow()
    assert sorted(zip(quarantine["row_number"].to_pylist(), quarantine["rule"].to_pylist(), strict=True)) == [
        (1, "care_date.range"), (len(rows), "act_code.format")]


def test_unknown_person_and_bad_codes_are_quarantined(
    scratch: tuple[Loader, str], extracts: Path, tmp_path: Path
) -> None:
    loader, _ = scratch
    loader.load("snds.beneficiaries", extracts / "beneficiaries.csv")
    table = pq.read_table(extracts / "pharmacy_dispensations.parquet")
    atc = table["PHA_ATC_CLA"].to_pylist()
    atc[0] = "not-an-atc"
    nir = table["BEN_NIR"].to_pylist()
    nir[1] = "199999999999999"
    table = table.set_column(table.schema.get_field_index("PHA_ATC_CLA"), "PHA_ATC_CLA", pa.array(atc))
    table = table.set_column(table.schema.get_field_index("BEN_NIR"), "BEN_NIR", pa.array(nir))
    path = tmp_path / "pharmacy_dispensations.parquet"
    pq.write_table(table, path)
    result = loader.load("snds.pharmacy_dispensations", path)
    assert result.rows_quarantined == 2
    rules = loader.catalog.load_table(loader.schemas["ops.quarantine"].identifier).scan().to_arrow()["rule"]
    assert sorted(rules.to_pylist()) == ["atc_code.ATC", "person_id.known"]


def test_quarantine_and_records_never_hold_raw_values(scratch: tuple[Loader, str], extracts: Path,
                                                      tmp_path: Path) -> None:
    loader, _ = scratch
    loader.load("snds.beneficiaries", extracts / "beneficiaries.csv")
    lines = (extracts / "outpatient_claims.csv").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "outpatient_claims.csv"
    path.write_text("\n".join([*lines, lines[3]]) + "\n", encoding="utf-8")
    loader.load("snds.outpatient_claims", path)
    raw_nir = lines[3].split(";")[1]
    for name in ("ops.quarantine", "ops.ingested_files"):
        dump = str(loader.catalog.load_table(loader.schemas[name].identifier).scan().to_arrow().to_pylist())
        assert raw_nir not in dump and raw_nir[:13] not in dump




def test_a_quarantine_past_its_memory_budget_spills_and_keeps_every_row(
    scratch_loader: Callable[..., Loader], extracts: Path, tmp_path: Path
) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    loader = scratch_loader(spill_dir=spill, quarantine_memory_rows=2)
    loader.load("snds.beneficiaries", extracts / "beneficiaries.csv")
    raw = (extracts / "hospital_stays.csv").read_bytes().decode("latin-1").splitlines()
    header, rows = raw[0], raw[1:]
    bad = len(rows) // 2
    changed = [";".join(f if i != 3 or n >= bad else "31022023" for i, f in enumerate(line.split(";")))
               for n, line in enumerate(rows)]
    path = tmp_path / "hospital_stays.csv"
    path.write_bytes(("\n".join([header, *changed]) + "\n").encode("latin-1"))
    with pytest.raises(FileRejectedError, match=rf"{bad} of {len(rows)} rows .* admission_date\.format x{bad}"):
        loader.load("snds.hospital_stays", path)
    quarantine = loader.catalog.load_table(loader.schemas["ops.quarantine"].identifier).scan().to_arrow()
    # Every row set aside is kept for review, in one snapshot, numbered as in the file (header = 0).
    assert sorted(quarantine["row_number"].to_pylist()) == list(range(1, bad + 1))
    assert set(quarantine["rule"].to_pylist()) == {"admission_date.format"}
    assert len(set(quarantine["raw_reference"].to_pylist())) == bad
    assert list(spill.iterdir()) == []
    assert _rows(loader, "snds.hospital_stays") == 0


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_compressed_extracts_with_a_byte_order_mark_load_as_the_plain_ones(
        scratch: tuple[Loader, str], extracts: Path, tmp_path: Path, codec: str) -> None:
    loader, _ = scratch
    # Declared latin-1, delivered re-saved as UTF-8 with a byte-order mark, CRLF, compressed.
    plain = (extracts / "beneficiaries.csv").read_bytes().decode("latin-1").encode("utf-8")
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, codec) as stream:
        stream.write(b"\xef\xbb\xbf" + plain.replace(b"\n", b"\r\n"))
    wrapped = tmp_path / "beneficiaries.csv"  # named as delivered: the first bytes say what it is
    wrapped.write_bytes(sink.getvalue().to_pybytes())

    result = loader.load("snds.beneficiaries", wrapped)
    assert (result.status, result.rows_published, result.rows_quarantined) == ("published", 300, 0)
    table = loader.catalog.load_table(loader.schemas["snds.beneficiaries"].identifier)
    assert table.scan().count() == 300
