"""Erasure on a real pyiceberg lake (SQLite catalog, file warehouse): rows out, others kept, a rerun a
no-op; the opposition register at ingestion and through a re-keying; the proof's readers.

The object store steps (history, landing, versions, the proof over buckets) need MinIO:
tests/integration/test_erasure.py.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from santelake.erasure.erase import (
    ErasureError,
    _without_removed_entries,
    erase_table,
    person_tables,
    read_persons,
)
from santelake.erasure.proof import Needles, avro_blocks, landed_hits, object_hits
from santelake.erasure.register import OppositionRegister, RegisterError
from santelake.ingest import runner
from santelake.ingest.load import Loader
from santelake.pseudonymise import Pseudonymiser
from santelake.pseudonymise.key import chain_id_of
from santelake.pseudonymise.rekey import rekey
from santelake.synth import synthesize

K1, K2 = bytes(range(32)), bytes(range(1, 33))
PERSON_TABLES = ("snds.beneficiaries", "snds.hospital_stays", "snds.outpatient_claims")


@pytest.fixture(scope="module")
def extracts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("extracts")
    synthesize(out, scale=60, seed=11)
    return out


def _nirs(path: Path, column: str) -> list[str]:
    with path.open(encoding="latin-1", newline="") as handle:
        return [row[column] for row in csv.DictReader(handle, delimiter=";")]


@pytest.fixture
def lake(tmp_path: Path) -> SqlCatalog:
    catalog = SqlCatalog("santelake", uri=f"sqlite:///{tmp_path / 'catalog.db'}",
                         warehouse=f"file://{tmp_path / 'warehouse'}")
    for namespace in ("snds", "ops"):
        catalog.create_namespace(namespace)
    return catalog


def _load(catalog: SqlCatalog, extracts: Path) -> Loader:
    """The extracts loaded; the claims in two halves, so a partition holds two data files."""
    loader = Loader(catalog, Pseudonymiser.from_key(K1), runner.schemas(), threshold=0.5)
    for name in PERSON_TABLES[:2]:
        loader.load(name, extracts / f"{name.split('.')[1]}.csv")
    header, *lines = (extracts / "outpatient_claims.csv").read_text(encoding="latin-1").splitlines()
    for half, part in enumerate((lines[::2], lines[1::2])):
        path = extracts.parent / f"claims-{extracts.name}-{half}.csv"
        path.write_text("\n".join([header, *part]) + "\n", encoding="latin-1")
        loader.load("snds.outpatient_claims", path)
    return loader


def _persons(catalog: SqlCatalog, name: str) -> list[str]:
    table = catalog.load_table(runner.schemas()[name].identifier)
    return list(table.scan(selected_fields=("person_id",)).to_arrow()["person_id"].to_pylist())


def test_erase_table_removes_exactly_the_persons_rows_and_a_rerun_changes_nothing(
        lake: SqlCatalog, extracts: Path) -> None:
    _load(lake, extracts)
    schemas = runner.schemas()
    claims = Counter(_persons(lake, "snds.outpatient_claims"))
    stays = Counter(_persons(lake, "snds.hospital_stays"))
    erased = sorted({person for person, _ in claims.most_common(2)} | {stays.most_common(1)[0][0]})
    opposed = pa.array(sorted(erased), pa.string())
    before = {name: Counter(_persons(lake, name)) for name in PERSON_TABLES}

    targets = {t.name: t for t in person_tables(lake, schemas)}
    assert set(PERSON_TABLES) | {"ops.quarantine"} == set(targets)
    for name in PERSON_TABLES:
        table = lake.load_table(schemas[name].identifier)
        result = erase_table(table, targets[name], opposed, "erasure-test")
        expected = sum(before[name][p] for p in erased)
        assert result.rows_deleted == expected > 0, name
        after = Counter(_persons(lake, name))
        assert not set(erased) & set(after), name
        # Every other person's rows are all there, each exactly as many times as before.
        assert after == Counter({p: n for p, n in before[name].items() if p not in erased}), name
        table = lake.load_table(schemas[name].identifier)
        assert table.current_snapshot().summary.additional_properties["santelake.erasure"] == "erasure-test"
        # Each rewritten file has a name of its own (two of one partition once shared one, the second
        # overwriting the first), and the files hold exactly the rows the table says.
        paths = [task.file.file_path for task in table.scan().plan_files()]
        assert len(paths) == len(set(paths)), name
        assert sum(pq.ParquetFile(p.removeprefix("file://")).metadata.num_rows for p in paths) == \
            sum(after.values()), name

    for name in PERSON_TABLES:
        again = erase_table(lake.load_table(schemas[name].identifier), targets[name], opposed, "erasure-again")
        assert (again.rows_deleted, again.files_rewritten) == (0, 0), name


def test_a_copy_outside_the_schemas_is_found_by_its_person_column(lake: SqlCatalog, extracts: Path) -> None:
    _load(lake, extracts)
    rows = lake.load_table(runner.schemas()["snds.hospital_stays"].identifier).scan().to_arrow()
    lake.create_namespace("scratch")
    copy = lake.create_table(("scratch", "stays_copy"), rows.schema)
    copy.append(rows)
    lake.create_table(("scratch", "no_person"), pa.schema([("n", pa.int64())]))
    found = {t.name: t for t in person_tables(lake, runner.schemas())}
    assert found["scratch.stays_copy"].columns == ("person_id",) and found["scratch.stays_copy"].declared is None
    assert "scratch.no_person" not in found
    person = rows["person_id"][0].as_py()
    result = erase_table(copy, found["scratch.stays_copy"], pa.array([person]), "e1")
    assert result.rows_deleted == rows["person_id"].to_pylist().count(person) > 0


def test_a_load_drops_the_registered_persons_rows_before_anything_keeps_them(
        lake: SqlCatalog, extracts: Path) -> None:
    pseudonymiser = Pseudonymiser.from_key(K1)
    nirs = _nirs(extracts / "beneficiaries.csv", "BEN_NIR")[:2]
    claim_nirs = Counter(_nirs(extracts / "outpatient_claims.csv", "BEN_NIR"))
    register = OppositionRegister(lake.engine)
    assert register.add([pseudonymiser.pseudonymise(n) for n in nirs], pseudonymiser.key_id, "e1") == 2

    loader = _load(lake, extracts)

    assert not {pseudonymiser.pseudonymise(n) for n in nirs} & set(_persons(lake, "snds.beneficiaries"))
    files = lake.load_table(runner.schemas()["ops.ingested_files"].identifier).scan().to_arrow().to_pylist()
    opposed: Counter[str] = Counter()
    for row in files:
        opposed[row["target_table"]] += row["opposed_count"]
    assert opposed["snds.beneficiaries"] == 2
    assert opposed["snds.outpatient_claims"] == sum(claim_nirs[n] for n in nirs)
    # Not quarantined either (their claims would otherwise fail the known-person rule).
    quarantine = lake.load_table(runner.schemas()["ops.quarantine"].identifier).scan().to_arrow()
    assert not {pseudonymiser.pseudonymise(n) for n in nirs} & set(quarantine["raw_reference"].to_pylist())
    assert loader.register() is not None


def test_the_register_survives_a_rekeying_and_refuses_the_old_key(lake: SqlCatalog, extracts: Path) -> None:
    _load(lake, extracts)
    old = Pseudonymiser.from_key(K1)
    person = _persons(lake, "snds.beneficiaries")[0]
    register = OppositionRegister(lake.engine)
    register.add([person], old.key_id, "e1")

    rekey(lake, runner.schemas(), (K1,), K2, lambda _: None)

    new_id = chain_id_of((K1, K2))
    assert register.pseudonyms(new_id) == {Pseudonymiser.from_key(K2).pseudonymise(person)}
    # The re-keyed person is the same person in the re-keyed table.
    assert Pseudonymiser.from_key(K2).pseudonymise(person) in _persons(lake, "snds.beneficiaries")
    assert register.rekey(old.key_id, new_id, lambda values: values) == 0  # a second run changes nothing
    assert register.pseudonyms(old.key_id) == frozenset()  # no one is left under the old chain
    with pytest.raises(RegisterError, match="finish the re-keying"):
        register.add(["d" * 64], old.key_id, "e2")  # an erasure under the old chain is refused


def test_register_refuses_what_is_not_a_pseudonym_and_counts_what_is_new(lake: SqlCatalog) -> None:
    register = OppositionRegister(lake.engine)
    with pytest.raises(RegisterError, match="1 value"):
        register.add(["a" * 64, "not-a-pseudonym"], "k", "e1")
    assert register.add(["a" * 64, "b" * 64], "k", "e1") == 2
    assert register.add(["b" * 64, "c" * 64], "k", "e2") == 1
    assert register.pending() == ["e1", "e2"]
    register.finished("e2", "{}")
    assert register.pending() == ["e1"]
    assert register.count() == (3, 2)


def test_persons_read_from_lines_name_the_bad_line_never_its_value() -> None:
    pseudonymiser = Pseudonymiser.from_key(K1)
    persons = read_persons(["# objections of May", "1850578006084 36", "", "185052A006084"], "f.txt",
                           pseudonymiser, as_pseudonyms=False)
    assert persons.nirs == {"1850578006084", "185052A006084"}
    assert persons.pseudonyms == {pseudonymiser.pseudonymise("1850578006084"),
                                  pseudonymiser.pseudonymise("185052A006084")}
    with pytest.raises(ErasureError, match=r"f.txt: line\(s\) 2: not a NIR") as caught:
        read_persons(["1850578006084", "SECRET-VALUE-1234"], "f.txt", pseudonymiser, as_pseudonyms=False)
    assert "SECRET" not in str(caught.value)
    with pytest.raises(ErasureError, match=r"line.*1: not a pseudonym"):
        read_persons(["1850578006084"], "stdin", pseudonymiser, as_pseudonyms=True)
    with pytest.raises(ErasureError, match="no person given"):
        read_persons(["# nothing"], "stdin", pseudonymiser, as_pseudonyms=True)


def _parquet(table: pa.Table, compression: str = "zstd") -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=compression)
    return sink.getvalue()


def test_the_proof_reads_compressed_parquet_values_and_their_statistics() -> None:
    person, other = "ab" * 32, "cd" * 32
    needles = Needles([person], ["1850578006084"])
    assert object_hits(_parquet(pa.table({"p": [other, other]})), needles) == []
    found = object_hits(_parquet(pa.table({"p": [other, person, other]})), needles)
    assert found[0] == "1 value(s)"  # the value, found although the page is zstd-compressed
    assert any("column statistics" in item for item in found)  # and as the row group's maximum
    assert object_hits(_parquet(pa.table({"nir": ["185057800608436"]})), needles) == [
        "1 value(s)", "column statistics: 1 NIR(s)", "column statistics: 1 NIR(s)"]  # the value, its min and max


def test_the_proof_reads_avro_blocks_and_finds_a_bound_prefix(lake: SqlCatalog, extracts: Path) -> None:
    _load(lake, extracts)
    table: Any = lake.load_table(runner.schemas()["snds.beneficiaries"].identifier)
    manifest = table.current_snapshot().manifests(table.io)[0]
    data = Path(manifest.manifest_path.removeprefix("file://")).read_bytes()
    blocks = b"".join(avro_blocks(data))
    # The manifest names its data file, in a compressed block a raw search would not see into.
    path = next(iter(manifest.fetch_manifest_entry(table.io))).data_file.file_path.encode()
    assert path in blocks
    smallest = min(_persons(lake, "snds.beneficiaries"))
    assert object_hits(data, Needles([smallest])) == ["1 pseudonym prefix(s)"]
    assert object_hits(data, Needles(["0" * 64])) == []
    assert "gzip" not in object_hits(b"plain text " + smallest.encode(), Needles([smallest]))[0]


def test_no_manifest_the_table_reads_keeps_an_erased_persons_bound(lake: SqlCatalog, extracts: Path) -> None:
    """The person whose pseudonym is a data file's lowest: the rewrite's list of removed files keeps it, until
    the history step's append leaves that list out (the CI run of 3 December 2026 met it by chance)."""
    _load(lake, extracts)
    schemas = runner.schemas()
    name = "snds.beneficiaries"
    smallest = min(_persons(lake, name))
    target = {t.name: t for t in person_tables(lake, schemas)}[name]
    assert erase_table(lake.load_table(schemas[name].identifier), target, pa.array([smallest]), "e1").rows_deleted == 1

    def hits(table: Any) -> list[str]:
        return [m.manifest_path for m in table.current_snapshot().manifests(table.io)
                if object_hits(Path(m.manifest_path.removeprefix("file://")).read_bytes(), Needles([smallest]))]

    table: Any = lake.load_table(schemas[name].identifier)
    assert hits(table), "the rewrite lists the removed file with its bounds"
    cleaned = _without_removed_entries(table)
    assert hits(cleaned) == []
    assert smallest not in _persons(lake, name) and len(_persons(lake, name)) == len(set(_persons(lake, name)))
    assert _without_removed_entries(cleaned) is cleaned, "a table without such a list is left as it is"


def test_a_landed_extract_names_a_person_given_by_pseudonym_even_compressed_or_broken() -> None:
    import gzip

    pseudonymiser = Pseudonymiser.from_key(K1)
    needles = Needles([pseudonymiser.pseudonymise("1850578006084")])
    good = "BEN_NIR;BEN_NOM\n185057800608436;X\n290017500300112;Y\n".encode("latin-1")
    broken = b"garbage header\n\x00\x01185057800608436\n"
    other = b"BEN_NIR\n290017500300112\n"
    assert landed_hits(gzip.compress(good), needles, pseudonymiser) == ["1 person(s) by their NIR"]
    assert landed_hits(broken, needles, pseudonymiser) == ["1 person(s) by their NIR"]
    assert landed_hits(other, needles, pseudonymiser) == []
    # Inside a longer number, the digits are not a NIR.
    assert landed_hits(b"91850578006084360\n", needles, pseudonymiser) == []
    parquet = _parquet(pa.table({"NIR_ANO": ["185057800608436", "290017500300112"], "n": [1, 2]}))
    assert landed_hits(parquet, needles, pseudonymiser) == ["1 person(s) by their NIR"]


def test_the_erasure_dag_takes_pseudonyms_only_and_never_a_nir() -> None:
    from santelake.erasure.dag import erase_from_conf
    from santelake.errors import SantelakeError

    with pytest.raises(SantelakeError, match=r"takes only 'pseudonyms'.*NIRs are given to `santelake erase` only"):
        erase_from_conf({"nirs": ["1850578006084"]})
    with pytest.raises(SantelakeError, match="is a list of pseudonyms"):
        erase_from_conf({"pseudonyms": "ab" * 32})
