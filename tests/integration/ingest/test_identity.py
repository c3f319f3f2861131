"""A table's key holds across loads (ingest/identity.py), on the real catalog and object store.

Re-sent rows in other bytes publish nothing new; a reference table keeps the latest state of a
key, the old one reachable by time travel; an event table refuses a repeated key into
quarantine, naming the earlier file.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from santelake.ingest import identity
from santelake.ingest.dedupe import row_hashes
from santelake.ingest.load import Loader
from santelake.ingest.quarantine import Quarantine
from santelake.lake.storage import ingest_client
from santelake.settings import PlatformSettings

BENEFICIARIES = "snds.beneficiaries"
CLAIMS = "snds.outpatient_claims"


def _lines(path: Path) -> tuple[bytes, list[bytes]]:
    header, *rows = path.read_bytes().rstrip(b"\n").split(b"\n")
    return header, rows


def _write(path: Path, header: bytes, rows: list[bytes], newline: bytes = b"\n") -> Path:
    path.write_bytes(newline.join([header, *rows]) + newline)
    return path


def _other_person(row: bytes) -> bytes:
    """``row`` with another NIR (another order number, its control key recomputed): a person no load has seen."""
    nir, rest = row.split(b";", 1)
    first13 = nir[:10] + b"999"
    key = 97 - int(first13) % 97
    return first13 + b"%02d" % key + b";" + rest


def _five_deaths(extracts: Path) -> tuple[bytes, list[bytes], list[bytes]]:
    """The beneficiaries file's header and rows, and five living persons' rows again, now dead in March 2026."""
    header, rows = _lines(extracts / "beneficiaries.csv")
    death = header.split(b";").index(b"BEN_DCD_DTE")
    alive = [r for r in rows if not r.split(b";")[death]][:5]
    assert len(alive) == 5
    return header, rows, [b";".join(f if i != death else b"15032026" for i, f in enumerate(r.split(b";")))
                          for r in alive]


def _table(loader: Loader, name: str) -> Any:
    return loader.catalog.load_table(loader.schemas[name].identifier)


def _record(loader: Loader, sha256: str) -> dict[str, Any]:
    files = _table(loader, "ops.ingested_files").scan(row_filter=f"file_sha256 == '{sha256}'").to_arrow()
    assert files.num_rows == 1, files
    return dict(files.to_pylist()[0])


def _count(loader: Loader, name: str) -> int:
    return int(_table(loader, name).scan().to_arrow().num_rows)


def test_a_resent_slice_in_other_bytes_publishes_no_new_row(scratch: tuple[Loader, str], extracts: Path,
                                                             tmp_path: Path, platform: PlatformSettings) -> None:
    loader, _ = scratch
    first = loader.load(BENEFICIARIES, extracts / "beneficiaries.csv")
    assert first.status == "published" and first.rows_new == first.rows_published == first.rows_read
    header, rows = _lines(extracts / "beneficiaries.csv")
    snapshots = len(_table(loader, BENEFICIARIES).metadata.snapshots)
    names = header.split(b";")
    swapped = [1, 0, *range(2, len(names))]  # the first two columns trade places
    variants = {
        "crlf.csv": (header, rows[:100], b"\r\n"),
        "quoted.csv": (header, [b'"' + r.replace(b";", b'";"') + b'"' for r in rows[:100]], b"\n"),
        "reordered.csv": (b";".join(names[i] for i in swapped),
                          [b";".join(r.split(b";")[i] for i in swapped) for r in rows[:100]], b"\n"),
    }
    for name, (head, body, newline) in variants.items():
        again = loader.load(BENEFICIARIES, _write(tmp_path / name, head, body, newline))
        assert again.status == "published", again
        assert (again.rows_published, again.rows_unchanged, again.rows_updated) == (0, 100, 0), (name, again)
        record = _record(loader, again.sha256)
        assert (record["new_count"], record["updated_count"], record["unchanged_count"], record["refused_count"]) \
            == (0, 0, 100, 0)
    assert _count(loader, BENEFICIARIES) == first.rows_published
    # Nothing changed, so nothing but empty snapshots: the table's files are the same ones.
    table = _table(loader, BENEFICIARIES)
    assert len(table.metadata.snapshots) == snapshots + len(variants)
    assert {t.file.file_path for t in table.scan().plan_files()} == \
        {t.file.file_path for t in table.scan(snapshot_id=table.metadata.snapshots[snapshots - 1].snapshot_id)
         .plan_files()}
    # The staged files of the repeats were deleted without leaving an empty "directory" object behind.
    bucket, _, prefix = table.location().split("://", 1)[1].partition("/")
    keys = [o.object_name for o in ingest_client(platform).list_objects(bucket, prefix=prefix + "/", recursive=True)]
    assert keys and not [k for k in keys if k.endswith("/")]


def test_a_later_extract_replaces_a_persons_state_and_time_travel_keeps_the_old(
        scratch: tuple[Loader, str], extracts: Path, tmp_path: Path) -> None:
    loader, _ = scratch
    first = loader.load(BENEFICIARIES, extracts / "beneficiaries.csv")
    before = _table(loader, BENEFICIARIES).current_snapshot().snapshot_id
    header, rows, died = _five_deaths(extracts)
    # A mixed extract: 5 updated persons and 3 persons no load has seen.
    newcomers = [_other_person(r) for r in rows[-3:]]
    result = loader.load(BENEFICIARIES, _write(tmp_path / "update.csv", header, died + newcomers))
    assert result.status == "published", result
    assert (result.rows_published, result.rows_updated, result.rows_new, result.rows_unchanged) == (8, 5, 3, 0)
    table = _table(loader, BENEFICIARIES)
    now = table.scan().to_arrow()
    assert now.num_rows == first.rows_published + 3
    assert pa.compute.count_distinct(now["person_id"]).as_py() == now.num_rows, "a person holds one row"
    dead_now = now.filter(pa.compute.equal(now["death_month"], pa.scalar(dt.date(2026, 3, 1))))
    assert dead_now.num_rows == 5
    old = table.scan(snapshot_id=before).to_arrow()
    assert old.num_rows == first.rows_published
    old_dead = set(old.filter(pa.compute.is_valid(old["death_month"]))["person_id"].to_pylist())
    assert not old_dead & set(dead_now["person_id"].to_pylist()), "time travel shows them alive"
    # One commit published the update: the snapshot after `before` is the current one.
    assert table.current_snapshot().parent_snapshot_id == before


def test_a_claim_resent_under_the_same_key_is_refused_naming_the_first_file(
        scratch: tuple[Loader, str], extracts: Path, tmp_path: Path) -> None:
    loader, _ = scratch
    loader.load(BENEFICIARIES, extracts / "beneficiaries.csv")
    first = loader.load(CLAIMS, extracts / "outpatient_claims.csv")
    header, rows = _lines(extracts / "outpatient_claims.csv")
    # Rows 11 to 20 again, one with another amount, and a claim no load has seen.
    amount = header.split(b";").index(b"PRS_PAI_MNT")
    resent = rows[10:20]
    resent[0] = b";".join(f if i != amount else b"99.99" for i, f in enumerate(resent[0].split(b";")))
    fresh = b";".join([b"9999999999999", *rows[0].split(b";")[1:]])
    result = loader.load(CLAIMS, _write(tmp_path / "claims-resent.csv", header, [*resent, fresh], b"\r\n"))
    assert result.status == "published", result
    assert (result.rows_published, result.rows_refused, result.rows_quarantined) == (1, 10, 10), result
    assert "outpatient_claims.csv" in result.message and "row 1" in result.message, result.message
    assert _count(loader, CLAIMS) == first.rows_published + 1
    quarantined = _table(loader, "ops.quarantine").scan(row_filter=f"file_sha256 == '{result.sha256}'").to_arrow()
    assert sorted(quarantined["row_number"].to_pylist()) == list(range(1, 11))
    assert set(quarantined["rule"].to_pylist()) == {"already_loaded"}
    assert set(quarantined["earlier_file"].to_pylist()) == {"outpatient_claims.csv"}
    assert all(len(p) == 64 for p in quarantined["raw_reference"].to_pylist()), "the person's pseudonym, no raw value"
    record = _record(loader, result.sha256)
    assert (record["new_count"], record["refused_count"], record["quarantined_count"]) == (1, 10, 10)


def _count_ranges(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Settle repeats seven keys at a time; the returned list fills with each range's staged rows."""
    monkeypatch.setattr(identity, "SLICE_ROWS", 7)
    sizes: list[int] = []
    read = identity._Slices.read

    def counted(self: identity._Slices, number: int) -> pa.Table | None:
        rows = read(self, number)
        if rows is not None and self.folder.name == "staged":
            sizes.append(rows.num_rows)
        return rows

    monkeypatch.setattr(identity._Slices, "read", counted)
    return sizes


def test_a_whole_extract_resent_is_settled_range_by_range_with_the_same_outcome(
        scratch: tuple[Loader, str], extracts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loader, _ = scratch
    first = loader.load(BENEFICIARIES, extracts / "beneficiaries.csv")
    sizes = _count_ranges(monkeypatch)
    header, rows, died = _five_deaths(extracts)
    dead = {r.split(b";")[0]: r for r in died}
    newcomers = [_other_person(r) for r in rows[-3:]]
    whole = [dead.get(r.split(b";")[0], r) for r in rows] + newcomers
    result = loader.load(BENEFICIARIES, _write(tmp_path / "whole.csv", header, whole, b"\r\n"))
    assert result.status == "published", result
    assert (result.rows_published, result.rows_updated, result.rows_new, result.rows_unchanged) == \
        (8, 5, 3, first.rows_published - 5), result
    assert len(sizes) > 10 and max(sizes) <= 7 * 2, sizes  # many ranges, each about SLICE_ROWS keys
    now = _table(loader, BENEFICIARIES).scan().to_arrow()
    assert now.num_rows == first.rows_published + 3
    assert pa.compute.count_distinct(now["person_id"]).as_py() == now.num_rows, "a person holds one row"
    assert now.filter(pa.compute.equal(now["death_month"], pa.scalar(dt.date(2026, 3, 1)))).num_rows == 5


def test_a_whole_claims_file_resent_is_refused_range_by_range(
        scratch: tuple[Loader, str], extracts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loader, _ = scratch
    loader.load(BENEFICIARIES, extracts / "beneficiaries.csv")
    first = loader.load(CLAIMS, extracts / "outpatient_claims.csv")
    sizes = _count_ranges(monkeypatch)
    added: list[int] = []
    add = Quarantine.add

    def counted(self: Quarantine, rows: Any, rules: Any, *args: Any) -> None:
        if "already_loaded" in rules:
            added.append(len(rows))
        add(self, rows, rules, *args)

    monkeypatch.setattr(Quarantine, "add", counted)
    copy = tmp_path / "claims-again.csv"
    copy.write_bytes((extracts / "outpatient_claims.csv").read_bytes().replace(b"\n", b"\r\n"))
    again = loader.load(CLAIMS, copy)
    assert (again.status, again.rows_published, again.rows_refused) == ("published", 0, first.rows_published), again
    assert len(sizes) > 10, sizes
    # Set aside range by range (by key hash, not by row), never all held at once; the message
    # still names the lowest row.
    assert len(added) > 10 and max(added) <= 7 * 2 and sum(added) == first.rows_published, added
    assert "(the first, row 1, from outpatient_claims.csv)" in again.message, again.message
    assert _count(loader, CLAIMS) == first.rows_published
    refused = _table(loader, "ops.quarantine").scan(
        row_filter=f"file_sha256 == '{again.sha256}' and rule == 'already_loaded'").to_arrow()
    assert refused.num_rows == first.rows_published
    assert pa.compute.count_distinct(refused["row_number"]).as_py() == refused.num_rows
    assert set(refused["earlier_file"].to_pylist()) == {"outpatient_claims.csv"}


@pytest.mark.parametrize("source", ["hospital_stays.csv", "pharmacy_dispensations.parquet"])
def test_every_event_table_refuses_a_whole_resent_file(scratch: tuple[Loader, str], extracts: Path,
                                                       tmp_path: Path, source: str) -> None:
    loader, _ = scratch
    name = f"snds.{source.split('.')[0]}"
    loader.load(BENEFICIARIES, extracts / "beneficiaries.csv")
    first = loader.load(name, extracts / source)
    copy = tmp_path / f"again-{source}"
    if source.endswith(".csv"):
        copy.write_bytes((extracts / source).read_bytes().replace(b"\n", b"\r\n"))
    else:
        import pyarrow.parquet as pq

        pq.write_table(pq.read_table(extracts / source), copy, compression="snappy", row_group_size=77)
    again = loader.load(name, copy)
    assert again.status == "published"
    assert (again.rows_published, again.rows_refused) == (0, first.rows_published), again
    assert _count(loader, name) == first.rows_published


def test_a_regularisation_line_nets_out_its_claim(scratch: tuple[Loader, str], extracts: Path) -> None:
    """The generator's regularisation lines load beside the lines they correct, and net as the docs say:
    group by coalesce(corrected_claim_id, claim_id), sum the amounts (docs/researcher-guide.md)."""
    from decimal import Decimal

    loader, _ = scratch
    loader.load(BENEFICIARIES, extracts / "beneficiaries.csv")
    result = loader.load(CLAIMS, extracts / "outpatient_claims.csv")
    assert (result.status, result.rows_quarantined) == ("published", 0), result
    claims = _table(loader, CLAIMS).scan().to_arrow().to_pylist()
    corrections = [c for c in claims if c["corrected_claim_id"] is not None]
    by_id = {c["claim_id"]: c for c in claims}
    assert corrections, "the demo extracts carry regularisation lines"
    net: dict[str, Decimal] = {}
    for claim in claims:
        act = claim["corrected_claim_id"] or claim["claim_id"]
        net[act] = net.get(act, Decimal(0)) + claim["amount_paid"]
    assert len(net) == len(claims) - len(corrections), "each regularisation line folds into the line it corrects"
    for line in corrections:
        original = by_id[line["corrected_claim_id"]]
        assert line["amount_paid"] < 0 and net[original["claim_id"]] == original["amount_paid"] + line["amount_paid"]
        assert net[original["claim_id"]] >= 0
    cancelled = [c for c in corrections if net[c["corrected_claim_id"]] == 0]
    assert cancelled, "most corrections cancel their line whole"


def _guide_sql(section: str) -> str:
    """The first SQL block of a section of docs/researcher-guide.md: the test runs what researchers read."""
    guide = (Path(__file__).parents[3] / "docs" / "researcher-guide.md").read_text(encoding="utf-8")
    body = guide.split(f"## {section}", 1)[1]
    return body.split("```sql", 1)[1].split("```", 1)[0]


def test_trino_shows_the_latest_state_and_the_old_one_by_time_travel(
        scratch: tuple[Loader, str], extracts: Path, tmp_path: Path, sql: Any) -> None:
    loader, namespace = scratch
    first = loader.load(BENEFICIARIES, extracts / "beneficiaries.csv")
    before = _table(loader, BENEFICIARIES).current_snapshot().snapshot_id
    header, _, died = _five_deaths(extracts)
    assert loader.load(BENEFICIARIES, _write(tmp_path / "deaths.csv", header, died)).rows_updated == 5
    table = f"iceberg.{namespace}.beneficiaries"
    now = sql("dana", f"SELECT count(*), count(DISTINCT person_id), count(death_month) FROM {table}")[0]
    then = sql("dana", f"SELECT count(*), count(death_month) FROM {table} FOR VERSION AS OF {before}")[0]
    assert now[0] == now[1] == then[0] == first.rows_published
    assert now[2] == then[1] + 5


def test_the_guides_netting_query_runs_through_trino(scratch: tuple[Loader, str], extracts: Path, sql: Any) -> None:
    from decimal import Decimal

    loader, namespace = scratch
    loader.load(BENEFICIARIES, extracts / "beneficiaries.csv")
    loader.load(CLAIMS, extracts / "outpatient_claims.csv")
    query = _guide_sql("Net amounts").replace("iceberg.snds.outpatient_claims",
                                              f"iceberg.{namespace}.outpatient_claims")
    acts = sql("dana", query)
    claims = _table(loader, CLAIMS).scan().to_arrow().to_pylist()
    net: dict[str, Decimal] = {}
    for claim in claims:
        act = claim["corrected_claim_id"] or claim["claim_id"]
        net[act] = net.get(act, Decimal(0)) + claim["amount_paid"]
    kept = {act: paid for act, paid in net.items() if paid > 0}
    assert len(kept) < len(net), "some acts are cancelled whole"
    assert {row[0]: Decimal(str(row[1])) for row in acts} == kept


def test_the_key_index_skips_files_it_clears_and_files_it_does_not_cover_are_still_read(
        scratch: tuple[Loader, str], extracts: Path, tmp_path: Path) -> None:
    """Each load writes a run of the table's key index (ingest/keyindex.py) covering its data files.

    A load whose keys the runs do not hold reads none of the table's files; a file no run covers
    (its run removed here, as for a file Trino or a release before the index wrote) is read, its
    repeats found, and it gets a run of its own.
    """
    from santelake.ingest.identity import _indexed, _scan_tasks
    from santelake.ingest.keyindex import FileHashes, KeyIndex

    loader, _ = scratch
    loader.load(BENEFICIARIES, extracts / "beneficiaries.csv")
    first = loader.load(CLAIMS, extracts / "outpatient_claims.csv")
    table = _table(loader, CLAIMS)
    live = {task.file.file_path for task in table.scan().plan_files()}
    index = KeyIndex(table)
    runs = index.runs()
    assert len(runs) == 1 and runs[0].files == live and runs[0].rows == first.rows_published
    # Hashes no row of the table has: every covered file is skipped. One the table has: its run's files are read.
    _, tasks = _scan_tasks(table, ("claim_id",))
    fresh = np.array([1, 2, 3], dtype=np.uint64)
    assert _indexed(table, tasks, FileHashes([fresh], 3, tmp_path)) == ([], set())
    held = pq.read_table(table.io.new_input(sorted(live)[0]).open(), columns=["claim_id"])
    known = row_hashes(held, ["claim_id"])[:1]
    read, unindexed = _indexed(table, tasks, FileHashes([fresh, known], 4, tmp_path))
    assert {task.file.file_path for task in read} == live and not unindexed
    # Without its run, the table's files are read whole, the repeats refused, and a run made for them.
    table.io.delete(runs[0].path)
    header, rows = _lines(extracts / "outpatient_claims.csv")
    again = loader.load(CLAIMS, _write(tmp_path / "claims-again.csv", header, rows[:50], b"\r\n"))
    assert (again.rows_published, again.rows_refused) == (0, 50), again
    runs = index.runs()
    assert any(run.files == live for run in runs), runs
    assert _count(loader, CLAIMS) == first.rows_published


def test_the_key_cache_answers_from_disk_and_a_damaged_or_missing_one_is_read_from_the_store(
        scratch: tuple[Loader, str], extracts: Path, tmp_path: Path) -> None:
    """The loader keeps the key index's runs decoded on its disk (``keyindex.RunCache``). What the
    store holds decides: a cached group that does not match its run, or no cache at all, is read
    from the store again, and re-sent claims are refused either way."""
    from santelake.ingest.keyindex import KeyIndex

    loader, _ = scratch
    assert loader.key_cache is not None
    loader.load(BENEFICIARIES, extracts / "beneficiaries.csv")
    first = loader.load(CLAIMS, extracts / "outpatient_claims.csv")
    table = _table(loader, CLAIMS)
    [run] = KeyIndex(table).runs()
    folder = loader.key_cache.table_folder(KeyIndex(table).location)
    group = folder / run.path.rsplit("/", 1)[-1].removesuffix(".parquet") / "00000.i64"
    stored = pq.read_table(table.io.new_input(run.path).open()).column(0).to_numpy()
    assert np.array_equal(np.fromfile(group, dtype=np.int64), stored)  # kept as written
    header, rows = _lines(extracts / "outpatient_claims.csv")
    group.write_bytes(group.read_bytes()[:-8])  # one hash short
    again = loader.load(CLAIMS, _write(tmp_path / "claims-again.csv", header, rows[:50], b"\r\n"))
    assert (again.rows_published, again.rows_refused) == (0, 50), again
    assert np.array_equal(np.fromfile(group, dtype=np.int64), stored)  # read from the store, kept again
    shutil.rmtree(loader.key_cache.folder)  # a fresh machine: the runs are read from the store, and kept
    third = loader.load(CLAIMS, _write(tmp_path / "claims-third.csv", header, rows[50:80], b"\n"))
    assert (third.rows_published, third.rows_refused) == (0, 30), third
    assert np.array_equal(np.fromfile(group, dtype=np.int64), stored)
    assert _count(loader, CLAIMS) == first.rows_published
