"""Re-keying on the real stack: files loaded through the Loader into a scratch namespace, then re-keyed."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from santelake.ingest import runner
from santelake.ingest.load import Loader
from santelake.pseudonymise import KEY_ID_PROPERTY, Pseudonymiser
from santelake.pseudonymise.key import chain_id_of, load_key_chain, write_key_chain
from santelake.pseudonymise.rekey import ALREADY, REKEYED, forget_history, rekey

# Every source but one, in load order, by the file name the generator writes: gp_consultations
# is loaded after the re-keying, to show a late file links to the re-keyed rows.
LATE = "gp_consultations"
SOURCES = {s.name: s.source.file for s in runner.sources() if s.source is not None and s.name != LATE}


def _persons(loader: Loader, name: str) -> list[str]:
    table = loader.catalog.load_table(loader.schemas[name].identifier)
    return list(table.scan(selected_fields=("person_id",)).to_arrow()["person_id"].to_pylist())


def test_rekey_changes_every_pseudonym_keeps_links_and_a_rerun_is_a_no_op(
        scratch: tuple[Loader, str], extracts: Path, tmp_path: Path) -> None:
    base, _ = scratch
    old_key, new_key = secrets.token_bytes(32), secrets.token_bytes(32)
    chain_file = tmp_path / "pseudonym-key"
    write_key_chain(chain_file, (old_key,))
    loader = Loader(base.catalog, Pseudonymiser.from_chain(load_key_chain(chain_file, env={})), base.schemas,
                    flush_rows=200, gx_dir=tmp_path / "gx")
    for source, name in SOURCES.items():
        assert loader.load(f"snds.{source}", extracts / name).status == "published"
    before = {f"snds.{source}": _persons(loader, f"snds.{source}") for source in SOURCES}

    report = rekey(base.catalog, base.schemas, load_key_chain(chain_file, env={}), new_key,
                   lambda keys: write_key_chain(chain_file, keys))

    assert {t.status for t in report.tables} == {REKEYED}
    assert load_key_chain(chain_file, env={}) == (old_key, new_key)
    step = Pseudonymiser.from_key(new_key)
    after = {name: _persons(loader, name) for name in before}
    for name, old in before.items():
        assert not set(after[name]) & set(old), f"{name}: a pseudonym was left unchanged"
        assert sorted(after[name]) == sorted(step.pseudonymise(p) for p in old)
        table = base.catalog.load_table(base.schemas[name].identifier)
        assert table.properties[KEY_ID_PROPERTY] == chain_id_of((old_key, new_key))
    persons = set(after["snds.beneficiaries"])
    for name in ("snds.hospital_stays", "snds.outpatient_claims", "snds.pharmacy_dispensations"):
        assert set(after[name]) <= persons, f"{name}: a person no longer links to beneficiaries"

    # A file loaded after re-keying, with the installation's chain, links to the old rows.
    chained = Loader(base.catalog, Pseudonymiser.from_chain(load_key_chain(chain_file, env={})), base.schemas,
                     flush_rows=200, gx_dir=tmp_path / "gx")
    late = chained.load(f"snds.{LATE}", extracts / f"{LATE}.parquet")
    assert late.status == "published" and late.rows_quarantined == 0
    assert set(_persons(chained, f"snds.{LATE}")) <= persons

    snapshots = _snapshot_counts(base)
    again = rekey(base.catalog, base.schemas, load_key_chain(chain_file, env={}), new_key,
                  lambda keys: write_key_chain(chain_file, keys))
    assert {t.status for t in again.tables} == {ALREADY}
    assert _snapshot_counts(base) == snapshots

    forgotten = forget_history(base.catalog, base.schemas, chain_id_of((old_key, new_key)))
    assert sum(item.files for item in forgotten) > 0
    assert {name: sorted(_persons(loader, name)) for name in before} == {n: sorted(p) for n, p in after.items()}


def _snapshot_counts(loader: Loader) -> dict[str, Any]:
    return {name: len(loader.catalog.load_table(declared.identifier).metadata.snapshots)
            for name, declared in loader.schemas.items() if loader.catalog.table_exists(declared.identifier)}
