"""Erasure on the real stack (issue 15): persons out of the demo lake, proven by reading every object;
kept out of later loads; a kill -9 at each step then a rerun; a load running at the same time.

The persons are found in the demo's extracts, made again (seeded) as the demo made them. The
counts are read here through pyiceberg, not through the erasure's code; the scan for the
persons is the product's proof, checked against a hit it must find first.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from trino.exceptions import TrinoQueryError

from santelake import demo
from santelake.access import query
from santelake.access.token import dev_token
from santelake.erasure.erase import STEPS
from santelake.ingest import runner
from santelake.ingest.landing import INCOMING, LOADED, Landing
from santelake.runtime.layout import Layout
from santelake.runtime.platform import platform_settings
from santelake.synth import synthesize
from tests.integration.airflow_runs import failures, run_dags, scheduler_report

SANTELAKE = str(Path(sys.executable).parent / "santelake")
PERSON_TABLES = ("snds.beneficiaries", "snds.hospital_stays", "snds.outpatient_claims", "snds.gp_consultations",
                 "snds.pharmacy_dispensations", "ops.quarantine")
ERASE_TIMEOUT = 900


@pytest.fixture(scope="module")
def demo_extracts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    synthesize(out, scale=demo.DEMO_SCALE, seed=demo.DEMO_SEED)
    return out


def _column(path: Path, name: str) -> list[str]:
    with path.open(encoding="latin-1", newline="") as handle:
        return [row[name] for row in csv.DictReader(handle, delimiter=";")]


def _persons_with_stays_and_claims(layout: Layout, catalog: Any, extracts: Path, count: int) -> list[str]:
    """NIRs of demo persons with hospital stays and claims still in the lake (an earlier run or test may
    have erased some), the busiest first."""
    stays = Counter(n[:13] for n in _column(extracts / "hospital_stays.csv", "NIR_ANO"))
    claims = Counter(n[:13] for n in _column(extracts / "outpatient_claims.csv", "BEN_NIR"))
    both = sorted((n for n in stays if n in claims), key=lambda n: (-stays[n] - claims[n], n))[:200]
    present = _counts(catalog)
    chosen = [nir for nir, pseudonym in zip(both, _pseudonyms(layout, both), strict=True)
              if present["snds.hospital_stays"][pseudonym] and present["snds.outpatient_claims"][pseudonym]]
    assert len(chosen) >= count, "too few demo persons left in the lake"
    return chosen[:count]


def _person_column(name: str) -> str:
    return runner.schemas()[name].person_columns[0].name


def _counts(catalog: Any) -> dict[str, Counter[str]]:
    counts = {}
    for name in PERSON_TABLES:
        declared = runner.schemas()[name]
        if not catalog.table_exists(declared.identifier):
            continue
        column = _person_column(name)
        table = catalog.load_table(declared.identifier)
        values = table.scan(selected_fields=(column,)).to_arrow()[column].to_pylist()
        counts[name] = Counter(values)
    return counts


def _pseudonyms(layout: Layout, nirs: list[str]) -> list[str]:
    pseudonymiser = runner.pseudonymiser(platform_settings(layout))
    return [pseudonymiser.pseudonymise(n) for n in nirs]


def _erase(layout: Layout, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SANTELAKE, "--state-dir", str(layout.settings.state_dir), "erase", *args],
                          input=stdin, capture_output=True, text=True, timeout=ERASE_TIMEOUT, check=False)


def _erase_killed_at(layout: Layout, step: str, file: Path) -> str:
    """Run an erasure and kill -9 it as it begins ``step``; what it printed."""
    child = subprocess.Popen([SANTELAKE, "--state-dir", str(layout.settings.state_dir), "erase", str(file)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert child.stdout is not None
    printed = []
    deadline = time.monotonic() + ERASE_TIMEOUT
    for line in child.stdout:
        printed.append(line)
        if line.strip() == f"step {step}":
            os.kill(child.pid, signal.SIGKILL)
            break
        assert time.monotonic() < deadline, f"no 'step {step}' within {ERASE_TIMEOUT}s:\n{''.join(printed)}"
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, f"the erasure ended before step {step}:\n{''.join(printed)}"
    return "".join(printed)


def _key_cache_with_runs(settings: Any, catalog: Any, tmp_path: Path) -> dict[str, Path]:
    """The folders of the loads' key cache (``keyindex.RunCache``) holding the runs of each person
    table with keys. A table with runs has a row group of each read, as a load's check would; one
    without (an earlier erasure deleted them) gets the run a load's check writes for files no run
    covers: the hashes of every key it holds."""
    from santelake.ingest.dedupe import row_hashes
    from santelake.ingest.keyindex import SIGN, FileHashes, KeyIndex, as_int64, sorted_unique

    cache = runner.key_cache(settings)
    folders = {}
    for name in PERSON_TABLES:
        declared = runner.schemas()[name]
        keys = list(declared.identifier_fields)
        if not keys or not catalog.table_exists(declared.identifier):
            continue
        table = catalog.load_table(declared.identifier)
        index = KeyIndex(table, cache)
        runs = index.runs()
        if runs:
            first = runs[0].metadata.row_group(0).column(0).statistics.min  # a hash the run holds: its group is read
            index.repeated(runs, FileHashes([np.array([first], dtype=np.int64).view(np.uint64) ^ SIGN], 1, tmp_path))
        else:
            files = [task.file.file_path for task in table.scan().plan_files()]
            held = table.scan(selected_fields=tuple(keys)).to_arrow()
            index.write(files, [sorted_unique(as_int64(row_hashes(held, keys)))])
        folders[name] = cache.table_folder(index.location)
        assert folders[name].exists(), name
    assert "snds.beneficiaries" in folders and "snds.outpatient_claims" in folders, folders
    return folders


def _assert_erased(before: dict[str, Counter[str]], after: dict[str, Counter[str]], pseudonyms: list[str]) -> None:
    gone = 0
    for name, counts in before.items():
        assert not set(pseudonyms) & set(after[name]), f"{name} still holds an erased person"
        # Every other person's rows are there, each exactly as often as before.
        assert after[name] == Counter({p: n for p, n in counts.items() if p not in pseudonyms}), name
        gone += sum(counts[p] for p in pseudonyms)
    assert gone > 0


def test_three_persons_erased_leave_no_trace_and_exactly_their_rows_go(
        layout: Layout, catalog: Any, demo_extracts: Path, tmp_path: Path) -> None:
    nirs = _persons_with_stays_and_claims(layout, catalog, demo_extracts, 3)
    pseudonyms = _pseudonyms(layout, nirs)
    token = dev_token(layout, "dana")
    # A data engineer deletes one of the first person's stays through Trino: a merge-on-read
    # delete file, which leaves the row in its data file until the erasure compacts it.
    deleted = query.run(layout, token, "DELETE FROM iceberg.snds.hospital_stays WHERE person_id = "
                                       f"'{pseudonyms[0]}' AND stay_id = (SELECT min(stay_id) FROM "
                                       f"iceberg.snds.hospital_stays WHERE person_id = '{pseudonyms[0]}')")[1]
    assert deleted == [(1,)]
    stays = catalog.load_table(runner.schemas()["snds.hospital_stays"].identifier)
    assert any(task.delete_files for task in stays.scan().plan_files()), "Trino wrote no delete file"
    before = _counts(catalog)
    claims = runner.schemas()["snds.outpatient_claims"].identifier
    old_snapshot = catalog.load_table(claims).current_snapshot().snapshot_id
    # The proof finds what is there: before the erasure, the persons are in the lake.
    settings = platform_settings(layout)
    from santelake.erasure.cli import erasure_of
    from santelake.erasure.proof import Needles

    assert not erasure_of(settings, log=lambda _: None).prove(Needles(pseudonyms, nirs)).clean
    cached = _key_cache_with_runs(settings, catalog, tmp_path)
    people = tmp_path / "objections.txt"
    people.write_text("# three objections\n" + "\n".join(nirs) + "\n")

    head = query.run(layout, dev_token(layout, "chloe"), "SELECT max(seq) FROM audit.audit.records")[1][0][0]
    result = _erase(layout, str(people), "--json")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 name an erased person" in result.stdout
    for nir in nirs:
        assert nir not in result.stdout + result.stderr  # the report names no person
    for pseudonym in pseudonyms:
        assert pseudonym not in result.stdout + result.stderr
    _assert_erased(before, _counts(catalog), pseudonyms)
    # The loads' local copies of the key index went with the runs (they hash the persons' keys).
    assert not [name for name, folder in cached.items() if folder.exists()]
    # The compliance officer reads the erasure's report in the audit trail: counts, no person.
    names, rows = query.run(layout, dev_token(layout, "chloe"),
                            f"SELECT subject, payload FROM audit.audit.records WHERE seq > {head} "
                            "AND kind = 'santelake.erasure'")
    assert len(rows) == 1, rows
    recorded = json.loads(rows[0][1])
    assert recorded["done"] and recorded["proof"]["hits"] == 0 and recorded["persons_requested"] == 3
    assert not any(value in rows[0][1] for value in [*nirs, *pseudonyms])
    # Every table keeps one snapshot: time travel before the erasure is over.
    for name in PERSON_TABLES:
        table = catalog.load_table(runner.schemas()[name].identifier)
        # One snapshot, or none for a table nothing was ever written to (ops.quarantine on a
        # stack whose loads set no row aside).
        assert len(table.metadata.snapshots) <= 1, name
        assert not any(task.delete_files for task in table.scan().plan_files()), name
    # Researchers and engineers see the same through Trino.
    names = ", ".join(f"'{p}'" for p in pseudonyms)
    rows = query.run(layout, token, f"SELECT count(*) FROM iceberg.snds.outpatient_claims WHERE person_id IN ({names})")
    assert rows[1] == [(0,)]
    # Time travel to before the erasure fails, as docs/researcher-guide.md says.
    with pytest.raises(TrinoQueryError) as travel:
        query.run(layout, token,
                  f"SELECT count(*) FROM iceberg.snds.outpatient_claims FOR VERSION AS OF {old_snapshot}")
    print(f"\ntime travel after an erasure: {travel.value}")
    assert "snapshot" in str(travel.value).lower()
    # A second run (no new person) erases nothing more and proves the same.
    again = _erase(layout)
    assert again.returncode == 0, again.stdout + again.stderr
    assert " 0 rows deleted" in again.stdout and "0 name an erased person" in again.stdout


def test_a_later_load_publishes_none_of_an_objecting_persons_rows(
        layout: Layout, catalog: Any, demo_extracts: Path, tmp_path: Path) -> None:
    erased = _persons_with_stays_and_claims(layout, catalog, demo_extracts, 1)
    people = tmp_path / "objection.txt"
    people.write_text(erased[0] + "\n")
    assert _erase(layout, str(people)).returncode == 0
    # An extract re-sent with the objecting person's line and new persons of another seed.
    fresh = tmp_path / "fresh"
    synthesize(fresh, scale=25, seed=time.time_ns() % (1 << 30))
    lines = (fresh / "beneficiaries.csv").read_text(encoding="latin-1").splitlines()
    theirs = [line for line in (demo_extracts / "beneficiaries.csv").read_text(encoding="latin-1").splitlines()
              if line.split(";")[0][:13] == erased[0]]
    assert len(theirs) == 1
    extract = tmp_path / f"beneficiaries-resent-{time.time_ns()}.csv"
    extract.write_text("\n".join([lines[0], *theirs, *lines[1:]]) + "\n", encoding="latin-1")
    landing = Landing.of(platform_settings(layout))
    key = landing.land("beneficiaries", extract)

    deadline = time.monotonic() + 300
    while key in {o.key for o in landing.objects(INCOMING)}:
        assert time.monotonic() < deadline, f"the scheduler did not load the extract:\n{scheduler_report(layout)}"
        time.sleep(2)

    files = catalog.load_table(runner.schemas()["ops.ingested_files"].identifier)
    record = [r for r in files.scan().to_arrow().to_pylist() if r["file_name"] == extract.name]
    assert [(r["status"], r["opposed_count"]) for r in record] == [("published", 1)], record
    assert _pseudonyms(layout, erased)[0] not in _counts(catalog)["snds.beneficiaries"]
    # The landed copy is not kept: it names the person.
    assert extract.name not in {o.name for o in landing.objects(LOADED)}


def test_a_kill_at_each_step_then_a_rerun_ends_as_an_uninterrupted_erasure(
        layout: Layout, catalog: Any, demo_extracts: Path, tmp_path: Path) -> None:
    nirs = _persons_with_stays_and_claims(layout, catalog, demo_extracts, 3)
    pseudonyms = _pseudonyms(layout, nirs)
    before = _counts(catalog)
    assert all(before["snds.beneficiaries"][p] == 1 for p in pseudonyms)
    people = tmp_path / "objections.txt"
    people.write_text("\n".join(nirs) + "\n")

    for step in STEPS[1:]:
        _erase_killed_at(layout, step, people)
    result = _erase(layout, str(people))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 name an erased person" in result.stdout
    _assert_erased(before, _counts(catalog), pseudonyms)


def _load_holds_the_lock(catalog: Any) -> bool:
    import sqlalchemy as sa

    with catalog.engine.connect() as connection:
        held = connection.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                          "AND mode = 'ShareLock' AND granted")).scalar_one()
    return bool(held)


def test_an_erasure_during_a_load_waits_for_it_and_both_complete(
        layout: Layout, catalog: Any, demo_extracts: Path, tmp_path: Path) -> None:
    nirs = _persons_with_stays_and_claims(layout, catalog, demo_extracts, 2)
    pseudonyms = _pseudonyms(layout, nirs)
    before = _counts(catalog)
    report = synthesize(tmp_path / "fresh", scale=50_000, seed=time.time_ns() % (1 << 30))
    beneficiaries = next(Path(item.path) for item in report.files if item.table == "beneficiaries")
    named = beneficiaries.rename(tmp_path / f"beneficiaries-{time.time_ns()}.csv")
    landing = Landing.of(platform_settings(layout))
    key = landing.land("beneficiaries", named)
    people = tmp_path / "objections.txt"
    people.write_text("\n".join(nirs) + "\n")
    deadline = time.monotonic() + 120
    while not _load_holds_the_lock(catalog):
        assert time.monotonic() < deadline, f"the scheduler's load did not start:\n{scheduler_report(layout)}"
        time.sleep(0.2)

    result = _erase(layout, str(people))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "waiting for the loads under way to finish" in result.stdout
    assert key not in {o.key for o in landing.objects(INCOMING)}  # the load ended before the erasure began
    files = catalog.load_table(runner.schemas()["ops.ingested_files"].identifier)
    record = [r for r in files.scan().to_arrow().to_pylist() if r["file_name"] == named.name]
    assert [r["status"] for r in record] == ["published"], record
    after = _counts(catalog)
    kept = Counter({p: n for p, n in before["snds.beneficiaries"].items() if p not in pseudonyms})
    # Every new person of the extract is in, once; the erased ones are out; no one else changed.
    assert sum((after["snds.beneficiaries"] - kept).values()) == record[0]["new_count"] > 0
    assert not set(pseudonyms) & set(after["snds.beneficiaries"])
    assert all(after["snds.beneficiaries"][p] == 1 for p in kept)


def test_the_erasure_dag_erases_the_pseudonyms_of_its_run(layout: Layout, catalog: Any, demo_extracts: Path) -> None:
    pseudonyms = _pseudonyms(layout, _persons_with_stays_and_claims(layout, catalog, demo_extracts, 1))
    before = _counts(catalog)

    outcome = run_dags(layout, {"erasure": {"pseudonyms": pseudonyms}})

    run = outcome["runs"]["erasure"]
    assert run["state"] == "success", failures(layout, "erasure", run)
    _assert_erased(before, _counts(catalog), pseudonyms)


def test_older_object_versions_are_read_by_the_proof_and_deleted(layout: Layout, tmp_path: Path) -> None:
    """A bucket that keeps versions (the stack's do not): an older version naming a person is found,
    then deleted with the delete markers; the latest versions stay."""
    import io
    import uuid

    from minio.commonconfig import ENABLED
    from minio.versioningconfig import VersioningConfig

    from santelake.erasure.erase import delete_old_versions
    from santelake.erasure.proof import Needles, Proof, scan_bucket
    from santelake.runtime.services.minio import Minio

    client = Minio(layout).client()
    bucket = f"versions-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)
    try:
        client.set_bucket_versioning(bucket, VersioningConfig(ENABLED))
        person = "ab" * 32
        for key, body in (("kept", f"old {person}"), ("kept", "new, no one"), ("gone", f"{person}")):
            data = body.encode()
            client.put_object(bucket, key, io.BytesIO(data), len(data))
        client.remove_object(bucket, "gone")  # a delete marker over a version naming the person
        found = Proof()
        scan_bucket(client, bucket, Needles([person]), found, versions=True)
        assert len(found.hits) == 2 and all("versionId=" in h.location for h in found.hits), found.hits

        assert delete_old_versions(client, bucket) == 3  # kept's old version, gone's version and its marker

        after = Proof()
        scan_bucket(client, bucket, Needles([person]), after, versions=True)
        assert after.clean and after.objects == 1
        assert client.get_object(bucket, "kept").read() == b"new, no one"
    finally:
        for item in client.list_objects(bucket, recursive=True, include_version=True):
            client.remove_object(bucket, item.object_name, version_id=item.version_id)
        client.remove_bucket(bucket)
