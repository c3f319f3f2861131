"""Typed CSV reading: the same lake values as the text path, and a fall back that loses no row."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from santelake.ingest import runner, source
from santelake.pseudonymise import InvalidValuesError, Pseudonymiser, apply_transforms
from santelake.schema import TableSchema

HEADER = "FLX_ID;BEN_NIR;EXE_SOI_DTD;PRS_NAT_REF;PSP_SPE_COD;PSE_SPE_COD;PRS_PAI_MNT;PRS_REM_MNT;FLX_REG_ID"
GOOD = {"FLX_ID": "1", "BEN_NIR": "163026391167374", "EXE_SOI_DTD": "2024-09-22", "PRS_NAT_REF": "1112",
        "PSP_SPE_COD": "1", "PSE_SPE_COD": "11", "PRS_PAI_MNT": "30.00", "PRS_REM_MNT": "20.00",
        "FLX_REG_ID": ""}
# Values around what Arrow's typed parse and the text path (trim, then cast) accept.
INTEGERS = ["12", " 12", "12 ", "\t12", "+12", "-12", "0012", "1e3", "12.0", "2147483647", "2147483648",
            "-2147483648", "-2147483649", " ", "", '"12"', '""', '" 12 "', "0x1F", "12\u00a0", "\u0661\u0662",
            "NULL", "nan", "1_000"]
DATES = ["2024-09-22", " 2024-09-22", "2024-09-22 ", "2024-9-22", "2024-02-29", "2023-02-29", "2024-02-30",
         "20240922", "22/09/2024", "2024-09-22T00:00", "0000-01-01", "9999-12-31", "+2024-09-22",
         "2024/09/22", "99999-01-01", '"2024-09-22"', "", " ", "2024-13-01", "2024-00-10", "\u0662024-09-22"]


@pytest.fixture(scope="module")
def claims() -> TableSchema:
    return runner.schemas()["snds.outpatient_claims"]


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    lines = [HEADER] + [";".join(row[name] for name in HEADER.split(";")) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _lake(declared: TableSchema, name: str, batches: list[pa.RecordBatch]) -> pa.Array | tuple[int, ...]:
    """The lake values of column ``name`` over the batches, or the rows (in the file) its transform refuses."""
    column = declared.column(name)
    assert column.source is not None
    values, refused, start = [], [], 0
    for batch in batches:
        try:
            values.append(apply_transforms(column, batch.column(column.source), Pseudonymiser.from_key(b"k" * 32)))
        except InvalidValuesError as exc:
            refused += [start + row for row in exc.rows]
        start += batch.num_rows
    return tuple(refused) if refused else pa.concat_arrays(values)


def test_integers_kept_and_iso_dates_are_read_typed(claims: TableSchema) -> None:
    assert source.typed_columns(claims) == {
        "EXE_SOI_DTD": pa.date32(), "PRS_NAT_REF": pa.int32(), "PSP_SPE_COD": pa.int32(), "PSE_SPE_COD": pa.int32(),
    }
    # DDMMYYYY dates and generalised birth dates stay text: the transforms read them.
    beneficiaries = runner.schemas()["snds.beneficiaries"]
    assert source.typed_columns(beneficiaries) == {"BEN_SEX_COD": pa.int32(), "BEN_RNG_GEM": pa.int32()}


@pytest.mark.parametrize(("name", "value"), [("act_code", v) for v in INTEGERS] + [("care_date", v) for v in DATES])
def test_typed_and_text_reading_give_the_same_lake_values(tmp_path: Path, claims: TableSchema, name: str,
                                                          value: str) -> None:
    raw_name = claims.column(name).source
    assert raw_name is not None
    path = _write(tmp_path / "claims.csv", [GOOD, GOOD | {"FLX_ID": "2", raw_name: value}, GOOD | {"FLX_ID": "3"}])

    typed = list(source.csv_batches(path, claims))
    text = list(source.csv_batches(path, claims, typed=False))

    assert sum(b.num_rows for b in typed) == sum(b.num_rows for b in text) == 3
    assert all(b.schema.field(raw_name).type == pa.string() for b in text)
    typed_values, text_values = _lake(claims, name, typed), _lake(claims, name, text)
    assert typed_values == text_values, f"{value!r}: typed {typed_values} but text {text_values}"


def test_a_bad_value_late_in_a_file_reads_the_rest_as_text_and_loses_no_row(
        tmp_path: Path, claims: TableSchema, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "BLOCK_BYTES", 4096)  # about 60 rows a batch
    rows = [GOOD | {"FLX_ID": str(i)} for i in range(2000)]
    rows[1500]["PRS_NAT_REF"] = "11x2"
    path = _write(tmp_path / "claims.csv", rows)

    batches = list(source.csv_batches(path, claims))

    assert [v for b in batches for v in b.column("FLX_ID").to_pylist()] == [str(i) for i in range(2000)]
    kinds = [b.schema.field("PRS_NAT_REF").type for b in batches]
    assert kinds[0] == pa.int32() and kinds[-1] == pa.string()
    assert kinds == sorted(kinds, key=lambda kind: kind == pa.string()), "typed batches, then text ones"
    assert _lake(claims, "act_code", batches) == (1500,)


def test_a_structural_fault_after_a_bad_value_is_still_reported(
        tmp_path: Path, claims: TableSchema, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source, "BLOCK_BYTES", 4096)
    rows = [GOOD | {"FLX_ID": str(i)} for i in range(2000)]
    rows[300]["PSE_SPE_COD"] = "?"
    path = _write(tmp_path / "claims.csv", rows)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1801] = lines[1801].rsplit(";", 1)[0]  # a column short: the row of claim 1800
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(source.SourceFileError) as caught:
        list(source.csv_batches(path, claims))

    # Arrow's streaming reader gives the row's text, not its number; the message never quotes it (a NIR).
    assert "a row has 8 column(s) where the header has 9" in str(caught.value)
    assert "163026391167374" not in str(caught.value) and "1800" not in str(caught.value)


def test_read_ahead_keeps_order_and_raises_where_the_error_came() -> None:
    def numbers() -> Iterator[int]:
        yield from range(5)
        raise source.SourceFileError(Path("f.csv"), "truncated", line=7)

    got: list[int] = []
    with pytest.raises(source.SourceFileError, match=r"f\.csv:7: truncated"):
        for item in source.read_ahead(numbers()):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]


def test_read_ahead_stops_its_thread_when_the_consumer_stops() -> None:
    produced: list[int] = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    for item in source.read_ahead(endless(), depth=2):
        if item == 3:
            break
    assert not [t for t in threading.enumerate() if t.name == "load-read"], "the reader thread is gone"
    assert len(produced) <= 3 + 2 + 2, "it read at most its depth ahead"


def _claims_bytes(rows: int = 3) -> bytes:
    lines = [HEADER] + [";".join((GOOD | {"FLX_ID": str(i)})[name] for name in HEADER.split(";")) for i in range(rows)]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


@pytest.mark.parametrize("wrap", ["plain", "bom", "gzip", "zstd", "gzip+bom"])
def test_extracts_load_as_delivered_whatever_their_wrapping(tmp_path: Path, claims: TableSchema, wrap: str) -> None:
    data = _claims_bytes()
    if "bom" in wrap:
        data = b"\xef\xbb\xbf" + data
    if wrap.startswith(("gzip", "zstd")):
        data = _compressed(data, wrap.split("+")[0])
    path = tmp_path / "claims.csv"  # the name says .csv whatever the content: the first bytes decide
    path.write_bytes(data)
    batches = list(source.csv_batches(path, claims))
    assert sum(b.num_rows for b in batches) == 3
    assert batches[0].schema.names == HEADER.split(";")
    assert batches[0].column("FLX_ID").to_pylist() == ["0", "1", "2"]


def _compressed(data: bytes, codec: str) -> bytes:
    """A real gzip or zstd file of ``data``, as gzip(1) or zstd(1) would write it."""
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, codec) as stream:
        stream.write(data)
    return bytes(sink.getvalue().to_pybytes())


def test_a_byte_order_mark_makes_a_latin1_declared_file_utf8(tmp_path: Path) -> None:
    beneficiaries = runner.schemas()["snds.beneficiaries"]
    header = ";".join(beneficiaries.raw_columns)
    row = ";".join({"BEN_NOM": "Ch\u00e9rif", "BEN_PRENOM": "L\u00e9a"}.get(c, "1") for c in beneficiaries.raw_columns)
    path = tmp_path / "beneficiaries.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"{header}\n{row}\n".encode())
    [batch] = list(source.csv_batches(path, beneficiaries, typed=False))
    assert batch.schema.names == list(beneficiaries.raw_columns)
    assert batch.column("BEN_NOM").to_pylist() == ["Ch\u00e9rif"]  # read as UTF-8, not as latin-1


def test_the_wrong_format_is_named_not_quoted(tmp_path: Path, claims: TableSchema) -> None:
    import pyarrow.parquet as pq

    parquet = tmp_path / "claims.csv"
    pq.write_table(pa.table({"FLX_ID": ["1"]}), parquet)
    with pytest.raises(source.SourceFileError, match="this is a Parquet file, but the source is declared as CSV"):
        list(source.csv_batches(parquet, claims))
    gp = runner.schemas()["snds.gp_consultations"]
    compressed = tmp_path / "gp.parquet"
    compressed.write_bytes(_compressed(parquet.read_bytes(), "gzip"))
    with pytest.raises(source.SourceFileError, match="a gzip-compressed Parquet file"):
        list(source.parquet_batches(compressed, gp))


def test_no_message_quotes_the_files_content(tmp_path: Path, claims: TableSchema) -> None:
    passwd = tmp_path / "claims.csv"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    with pytest.raises(source.SourceFileError) as caught:
        list(source.csv_batches(passwd, claims))
    assert "root" not in str(caught.value).replace(str(tmp_path), "") and "expected 9 separated by ';'" in str(
        caught.value)
    renamed = tmp_path / "renamed.csv"
    renamed.write_text(HEADER.replace("BEN_NIR", "163026391167374") + "\n" + ";".join(GOOD.values()) + "\n")
    with pytest.raises(source.SourceFileError) as caught:
        list(source.csv_batches(renamed, claims))
    message = str(caught.value)
    assert "missing column(s) BEN_NIR; 1 undeclared column(s), at header position(s) 2" in message
    assert "163026391167374" not in message


def test_a_link_is_never_followed(tmp_path: Path, claims: TableSchema) -> None:
    link = tmp_path / "outpatient_claims.csv"
    link.symlink_to("/etc/passwd")
    with pytest.raises(source.SourceFileError, match="not a regular file") as caught:
        list(source.batches(link, claims))
    assert "root" not in str(caught.value).replace(str(tmp_path), "")

