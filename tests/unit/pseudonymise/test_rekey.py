"""Re-keying a real pyiceberg lake (SQLite catalog, file warehouse): every pseudonym changes, links hold,
a crash anywhere resumes, a second run is a no-op, and wrong keys are refused before anything changes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from santelake.errors import ConfigError
from santelake.ingest import runner
from santelake.ingest.load import Loader
from santelake.pseudonymise import KEY_ID_PROPERTY, Pseudonymiser
from santelake.pseudonymise.key import chain_id_of, load_key_chain, write_key_chain
from santelake.pseudonymise.rekey import (
    ALREADY,
    REKEYED,
    RekeyError,
    check_tables,
    forget_history,
    pseudonymised_tables,
    rekey,
)
from santelake.schema import TableSchema
from santelake.synth import synthesize

K1, K2, K3 = bytes(range(32)), bytes(range(1, 33)), bytes(range(2, 34))
FILES = {"beneficiaries": "beneficiaries.csv", "hospital_stays": "hospital_stays.csv",
         "outpatient_claims": "outpatient_claims.csv"}


@pytest.fixture(scope="module")
def extracts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("extracts")
    synthesize(out, scale=40, seed=3)
    # A row that breaks a rule, so ops.quarantine holds a pseudonymised raw reference too.
    claims = out / "outpatient_claims.csv"
    lines = claims.read_text(encoding="latin-1").splitlines()
    lines.append(lines[1])
    claims.write_text("\n".join(lines) + "\n", encoding="latin-1")
    return out


@dataclasses.dataclass
class Lake:
    catalog: SqlCatalog
    schemas: dict[str, TableSchema]
    saved: list[tuple[bytes, ...]]

    def loader(self, *keys: bytes) -> Loader:
        return Loader(self.catalog, Pseudonymiser.from_chain(keys), self.schemas, threshold=0.5)

    def table(self, name: str) -> Any:
        return self.catalog.load_table(self.schemas[name].identifier)

    def rows(self, name: str) -> list[dict[str, Any]]:
        return list(self.table(name).scan().to_arrow().to_pylist())

    def column(self, name: str, column: str) -> list[Any]:
        return list(self.table(name).scan().to_arrow()[column].to_pylist())

    def rekey(self, chain: tuple[bytes, ...], new: bytes, **options: Any) -> Any:
        return rekey(self.catalog, self.schemas, chain, new, self.saved.append, **options)


@pytest.fixture
def lake(tmp_path: Path, extracts: Path) -> Lake:
    catalog = SqlCatalog("santelake", uri=f"sqlite:///{tmp_path / 'catalog.db'}",
                         warehouse=f"file://{tmp_path / 'warehouse'}")
    for namespace in ("snds", "ops"):
        catalog.create_namespace(namespace)
    result = Lake(catalog, runner.schemas(), [])
    loader = result.loader(K1)
    for source, name in FILES.items():
        loader.load(f"snds.{source}", extracts / name)
    return result


def _pseudonyms(declared: TableSchema) -> str:
    return next(column.name for column in declared.lake_columns if column.pseudonymised)


def _present(lake: Lake) -> list[TableSchema]:
    return [d for d in pseudonymised_tables(lake.schemas) if lake.catalog.table_exists(d.identifier)]


def _snapshots(lake: Lake) -> dict[str, int]:
    return {d.full_name: len(lake.table(d.full_name).metadata.snapshots) for d in _present(lake)}


def test_every_pseudonym_is_rekeyed_and_persons_still_link(lake: Lake) -> None:
    before = {name: lake.column(name, "person_id") for name in ("snds.beneficiaries", "snds.hospital_stays")}
    references = lake.column("ops.quarantine", "raw_reference")
    files_before = lake.rows("ops.ingested_files")
    assert references, "the extracts must quarantine a row"

    report = lake.rekey((K1,), K2)

    step = Pseudonymiser.from_key(K2)
    for name, old in before.items():
        new = lake.column(name, "person_id")
        # Same rows in the same order, each pseudonym p now HMAC(K2, p): none is left as it was.
        assert sorted(new) == sorted(step.pseudonymise(p) for p in old)
        assert not set(new) & set(old)
    assert set(lake.column("snds.hospital_stays", "person_id")) <= set(lake.column("snds.beneficiaries", "person_id"))
    assert sorted(lake.column("ops.quarantine", "raw_reference")) == sorted(step.pseudonymise(r) for r in references)
    new_id = chain_id_of((K1, K2))
    assert set(lake.column("ops.quarantine", "pseudonym_key_id")) == {new_id}
    assert lake.rows("ops.ingested_files") == files_before, "load history is kept as it was"
    assert lake.saved == [(K1, K2)]
    assert report.old_key_id == chain_id_of((K1,)) and report.new_key_id == new_id
    assert {t.table: t.status for t in report.tables} == {
        "ops.quarantine": REKEYED, "snds.beneficiaries": REKEYED, "snds.hospital_stays": REKEYED,
        "snds.outpatient_claims": REKEYED}
    for declared in _present(lake):
        assert lake.table(declared.full_name).properties[KEY_ID_PROPERTY] == new_id
    # The audit trail's record: the chains' ids and each table's outcome, never a key or a pseudonym.
    summary = json.dumps(report.summary())
    assert json.loads(summary)["new_key_id"] == new_id and '"snds.beneficiaries"' in summary
    assert K1.hex() not in summary and K2.hex() not in summary
    assert not any(p in summary for p in lake.column("snds.beneficiaries", "person_id"))


def test_chain_pseudonymiser_is_the_old_pseudonym_rekeyed() -> None:
    chained = Pseudonymiser.from_chain((K1, K2))

    assert chained.pseudonymise("1850578006084 36") == \
        Pseudonymiser.from_key(K2).pseudonymise(Pseudonymiser.from_key(K1).pseudonymise("1850578006084"))
    assert chained.key_id == f"{Pseudonymiser.from_key(K1).key_id}+{Pseudonymiser.from_key(K2).key_id}"
    assert Pseudonymiser.from_chain((K1,)).key_id == Pseudonymiser.from_key(K1).key_id


def test_a_file_loaded_after_rekeying_links_to_the_old_rows(lake: Lake, extracts: Path) -> None:
    lake.rekey((K1,), K2)

    lake.loader(K1, K2).load("snds.pharmacy_dispensations", extracts / "pharmacy_dispensations.parquet")

    dispensed = set(lake.column("snds.pharmacy_dispensations", "person_id"))
    assert dispensed and dispensed <= set(lake.column("snds.beneficiaries", "person_id"))
    recorded = {row["file_name"]: row["pseudonym_key_id"] for row in lake.rows("ops.ingested_files")}
    assert recorded["pharmacy_dispensations.parquet"] == chain_id_of((K1, K2))


def test_a_second_run_is_a_no_op(lake: Lake) -> None:
    lake.rekey((K1,), K2)
    snapshots, persons = _snapshots(lake), lake.column("snds.beneficiaries", "person_id")

    report = lake.rekey((K1, K2), K2)

    assert {t.status for t in report.tables} == {ALREADY}
    assert _snapshots(lake) == snapshots
    assert lake.column("snds.beneficiaries", "person_id") == persons
    assert lake.saved == [(K1, K2)], "the chain already ends with the new key: nothing to save"


def test_a_crash_between_tables_resumes_to_the_same_lake(lake: Lake) -> None:
    before = {d.full_name: lake.column(d.full_name, _pseudonyms(d)) for d in _present(lake)}
    seen: list[str] = []

    def crash_after_second(name: str) -> None:
        seen.append(name)
        if len(seen) == 2:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        lake.rekey((K1,), K2, after_table=crash_after_second)

    ids = [lake.table(d.full_name).properties[KEY_ID_PROPERTY] for d in _present(lake)]
    assert ids == [chain_id_of((K1, K2))] * 2 + [chain_id_of((K1,))] * 2, "tables done are wholly done"
    assert lake.saved == [(K1, K2)], "the chain is saved before any table changes"
    # Loads are refused until the re-keying is finished, with either chain.
    for chain in ((K1,), (K1, K2)):
        with pytest.raises(RekeyError, match="records pseudonym key"):
            check_tables(lake.catalog, lake.schemas, Pseudonymiser.from_chain(chain))

    report = lake.rekey(lake.saved[-1], K2)

    assert [t.status for t in report.tables] == [ALREADY, ALREADY, REKEYED, REKEYED]
    step = Pseudonymiser.from_key(K2)
    for declared in _present(lake):
        rekeyed = lake.column(declared.full_name, _pseudonyms(declared))
        assert sorted(rekeyed) == sorted(step.pseudonymise(p) for p in before[declared.full_name]), declared.full_name
    check_tables(lake.catalog, lake.schemas, Pseudonymiser.from_chain((K1, K2)))


def test_a_failure_inside_a_table_leaves_it_wholly_old(lake: Lake) -> None:
    claims = lake.table("snds.outpatient_claims")
    bad = claims.scan(limit=1).to_arrow()
    bad = bad.set_column(bad.schema.get_field_index("person_id"), bad.schema.field("person_id"),
                         pa.array(["not a pseudonym"], bad.schema.field("person_id").type))
    claims.append(bad)
    old = lake.column("snds.outpatient_claims", "person_id")

    with pytest.raises(RekeyError, match=r"snds.outpatient_claims, column person_id: 1 value\(s\) are not"):
        lake.rekey((K1,), K2)

    assert sorted(lake.column("snds.outpatient_claims", "person_id")) == sorted(old)
    assert lake.table("snds.outpatient_claims").properties[KEY_ID_PROPERTY] == chain_id_of((K1,))
    assert lake.table("snds.hospital_stays").properties[KEY_ID_PROPERTY] == chain_id_of((K1, K2))


@pytest.mark.parametrize(("chain", "new", "message"), [
    ((K1,), K1, "is the key in use"),
    ((K1, K2), K1, "was used before in the key chain"),
    ((), K2, "no current key chain"),
])
def test_the_same_key_twice_is_refused(lake: Lake, chain: tuple[bytes, ...], new: bytes, message: str) -> None:
    snapshots = _snapshots(lake)

    with pytest.raises(RekeyError, match=message):
        lake.rekey(chain, new)

    assert _snapshots(lake) == snapshots and lake.saved == []


def test_a_table_made_with_another_key_is_refused_and_nothing_changes(lake: Lake) -> None:
    lake.table("snds.hospital_stays").transaction().set_properties({KEY_ID_PROPERTY: "0123456789ab"}) \
        .commit_transaction()
    snapshots = _snapshots(lake)

    with pytest.raises(RekeyError, match=r"snds\.hospital_stays records 0123456789ab"):
        lake.rekey((K1,), K2)

    assert _snapshots(lake) == snapshots and lake.saved == []
    assert KEY_ID_PROPERTY not in lake.table("snds.beneficiaries").properties, "not even a stamp"


def test_a_table_without_key_id_is_judged_by_its_load_records(lake: Lake, extracts: Path) -> None:
    # A load under another key, as ops.ingested_files says, though the table records nothing.
    loader = Loader(lake.catalog, Pseudonymiser.from_key(K3), lake.schemas, threshold=1.0)
    loader.load("snds.gp_consultations", extracts / "gp_consultations.parquet")

    with pytest.raises(RekeyError, match=f"snds.gp_consultations records {Pseudonymiser.from_key(K3).key_id}"):
        lake.rekey((K1,), K2)


def test_a_load_with_a_stale_chain_is_refused_after_rekeying(lake: Lake) -> None:
    lake.rekey((K1,), K2)

    with pytest.raises(RekeyError, match="was re-keyed since: use the installation's whole key chain"):
        check_tables(lake.catalog, lake.schemas, Pseudonymiser.from_key(K1))
    with pytest.raises(RekeyError, match="use the key chain this lake was pseudonymised with"):
        check_tables(lake.catalog, lake.schemas, Pseudonymiser.from_key(K2))


def test_forgetting_history_leaves_no_old_pseudonym_in_any_file(lake: Lake, tmp_path: Path) -> None:
    old = set(lake.column("snds.beneficiaries", "person_id"))
    lake.rekey((K1,), K2)
    rows = {d.full_name: lake.rows(d.full_name) for d in _present(lake)}

    forgotten = forget_history(lake.catalog, lake.schemas, chain_id_of((K1, K2)))

    assert all(item.snapshots > 0 and item.files > 0 for item in forgotten)
    assert {d.full_name: lake.rows(d.full_name) for d in _present(lake)} == rows
    for declared in _present(lake):
        assert len(lake.table(declared.full_name).metadata.snapshots) == 1
    left = set()
    for path in (tmp_path / "warehouse" / "snds").rglob("*.parquet"):
        left |= set(pq.read_table(path, columns=["person_id"])["person_id"].to_pylist())
    assert left and not left & old
    # Manifests keep column bounds (prefixes of pseudonyms): only the current snapshot's are left.
    prefixes = tuple(p[:16].encode() for p in old)
    for declared in _present(lake):
        table = lake.table(declared.full_name)
        current = table.current_snapshot()
        manifests = current.manifests(table.io)
        reachable = {current.manifest_list} | {m.manifest_path for m in manifests}
        location = Path(table.location().removeprefix("file://"))
        on_disk = {f"file://{path}" for path in location.rglob("*.avro")}
        assert on_disk == reachable, declared.full_name
        for manifest in manifests:
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                data_file = entry.data_file
                bounds = [*(data_file.lower_bounds or {}).values(), *(data_file.upper_bounds or {}).values()]
                assert not any(bound.startswith(prefixes) for bound in bounds), declared.full_name
    again = forget_history(lake.catalog, lake.schemas, chain_id_of((K1, K2)))
    assert all(item.snapshots == 0 for item in again)


def test_forgetting_history_waits_for_unrecorded_loads(lake: Lake, extracts: Path, tmp_path: Path) -> None:
    lake.rekey((K1,), K2)
    late = tmp_path / "late_stays.csv"
    late.write_bytes(b"\n".join((extracts / "hospital_stays.csv").read_bytes().split(b"\n")[:2]) + b"\n")
    loader = lake.loader(K1, K2)
    loader._record = lambda *_: None  # type: ignore[method-assign]  # the process died before its record
    loader.load("snds.hospital_stays", late)

    with pytest.raises(RekeyError, match=r"loads not recorded in ops\.ingested_files: late_stays\.csv"):
        forget_history(lake.catalog, lake.schemas, chain_id_of((K1, K2)))


def test_forgetting_history_needs_the_rekeying_finished(lake: Lake) -> None:
    with pytest.raises(RekeyError, match="run `santelake rekey` to the end"):
        forget_history(lake.catalog, lake.schemas, chain_id_of((K1, K2)))


def test_key_chain_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "pseudonym-key"

    write_key_chain(path, (K1, K2))

    assert load_key_chain(path, env={}) == (K1, K2)
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(("text", "message"), [
    (f"{K1.hex()}\nnot hex at all but long enough to be a key\n", "line 2: a key chain holds one hex key per line"),
    (f"{K1.hex()}\n{K2.hex()}\n{K1.hex()}\n", "line 3: the key chain holds key"),
    (f"{K1.hex()}\n{K2.hex()[:40]}\n", "line 2: the pseudonymisation key is 20 bytes"),
])
def test_a_bad_key_chain_names_its_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "chain"
    path.write_text(text, encoding="ascii")

    with pytest.raises(ConfigError, match=message):
        load_key_chain(path, env={})


def test_one_key_is_expected_where_a_chain_is_given(tmp_path: Path) -> None:
    from santelake.pseudonymise import load_key

    path = tmp_path / "chain"
    write_key_chain(path, (K1, K2))

    with pytest.raises(ConfigError, match="holds a key chain of 2 keys"):
        load_key(path, env={})


def test_cli_refuses_a_missing_new_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from santelake.cli import main

    monkeypatch.delenv("SANTELAKE_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("SANTELAKE_PSEUDONYM_KEY_FILE", str(tmp_path / "chain"))
    write_key_chain(tmp_path / "chain", (K1,))

    code = main(["--state-dir", str(tmp_path / "state"), "rekey", "--new-key-file", str(tmp_path / "absent")])

    assert code == 1
    assert f"key file {tmp_path / 'absent'}: cannot read the pseudonymisation key" in capsys.readouterr().err
    assert load_key_chain(tmp_path / "chain", env={}) == (K1,)


def test_cli_refuses_a_key_given_as_a_value(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from santelake.cli import main

    monkeypatch.delenv("SANTELAKE_PSEUDONYM_KEY_FILE", raising=False)
    monkeypatch.setenv("SANTELAKE_PSEUDONYM_KEY", K1.hex())

    assert main(["--state-dir", str(tmp_path / "state"), "rekey", "--new-key-file", str(tmp_path / "k")]) == 1
    assert "put the key in a file and set SANTELAKE_PSEUDONYM_KEY_FILE" in capsys.readouterr().err

