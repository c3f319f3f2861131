"""Ways around the policy, each refused or answered with permitted data only (as alice, researcher)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import trino.exceptions

from santelake.access import query
from santelake.access.token import dev_token
from santelake.policy.build import Build
from santelake.runtime.layout import Layout

pytestmark = pytest.mark.integration

DENIED = pytest.raises(trino.exceptions.TrinoUserError, match="Access Denied")
# SELECT * on a relation none of whose columns the user may read: with hide-inaccessible-columns,
# Trino answers as for a table that does not exist, naming neither.
HIDDEN = pytest.raises(trino.exceptions.TrinoUserError, match=r"Access Denied|Relation not found or not allowed")
REGION = ("75", "77", "78", "91", "92", "93", "94", "95")
YEARS = (dt.date(2019, 1, 1), dt.date(2024, 12, 31))
METADATA = ("files", "partitions", "snapshots", "manifests", "all_manifests", "history", "refs", "properties",
            "entries", "all_entries", "metadata_log_entries")


@pytest.mark.parametrize("suffix", METADATA)
def test_metadata_tables_are_refused(sql: Any, policy: Build, suffix: str) -> None:
    for table in ("beneficiaries", "hospital_stays"):
        with HIDDEN:
            sql("alice", f'SELECT * FROM iceberg.snds."{table}${suffix}"')
        with DENIED:
            sql("alice", f'SELECT count(*) FROM iceberg.snds."{table}${suffix}"')


def test_data_engineers_keep_metadata_tables(sql: Any, policy: Build) -> None:
    assert sql("dana", 'SELECT count(*) FROM iceberg.snds."hospital_stays$snapshots"')[0][0] >= 1


def test_select_star_means_the_granted_columns_masked_and_filtered(sql: Any, layout: Layout, policy: Build) -> None:
    names, rows = query.run(layout, dev_token(layout, "alice"), "SELECT * FROM iceberg.snds.beneficiaries")
    assert names == ["person_id", "birth_month", "sex_code", "residence_department"]  # declared order, no hidden one
    assert rows
    assert all(d in REGION and b.month == 1 and b.day == 1 and len(p) == 64 for p, b, _, d in rows)
    stored = {p for (p,) in sql("dana", "SELECT person_id FROM iceberg.snds.beneficiaries")}
    assert not {p for p, *_ in rows} & stored  # the project's pseudonym, never the lake's
    assert sql("alice", "SELECT count(*) FROM (SELECT * FROM iceberg.snds.beneficiaries)") == [(len(rows),)]


def test_hidden_columns_stay_refused_by_name_anywhere(sql: Any, policy: Build) -> None:
    with DENIED:
        sql("alice", "SELECT death_month FROM iceberg.snds.beneficiaries")
    with DENIED:
        sql("alice", "SELECT count(*) FROM iceberg.snds.beneficiaries WHERE death_month IS NOT NULL")
    with DENIED:
        sql("alice", "SELECT twin_rank, count(*) FROM iceberg.snds.beneficiaries GROUP BY 1")
    with DENIED:
        sql("alice", "SELECT count(*) FROM iceberg.snds.beneficiaries b JOIN iceberg.snds.hospital_stays h "
                     "ON b.person_id = h.person_id WHERE b.death_month IS NULL")
    with DENIED:
        sql("alice", "SELECT b.* , b.death_month FROM iceberg.snds.beneficiaries b")


def test_select_star_on_a_fully_granted_table_is_masked_and_filtered(sql: Any, policy: Build) -> None:
    rows = sql("alice", "SELECT * FROM iceberg.snds.hospital_stays")
    assert rows
    for row in rows:
        assert YEARS[0] <= row[3] <= YEARS[1]
        assert len(row[5]) <= 3  # main_diagnosis: first 3 characters


def test_filters_hold_in_where_group_by_subqueries_and_joins(sql: Any, policy: Build) -> None:
    outside = sql("alice", "SELECT count(*) FROM iceberg.snds.beneficiaries WHERE residence_department NOT IN "
                           f"({', '.join(repr(d) for d in REGION)})")
    assert outside == [(0,)]
    departments = sql("alice", "SELECT DISTINCT residence_department FROM iceberg.snds.beneficiaries")
    assert {d for (d,) in departments} <= set(REGION)
    early = sql("alice", "SELECT count(*) FROM (SELECT admission_date FROM iceberg.snds.hospital_stays) "
                         "WHERE admission_date < DATE '2019-01-01' OR admission_date > DATE '2024-12-31'")
    assert early == [(0,)]
    joined = sql("alice", "SELECT b.residence_department, h.admission_date FROM iceberg.snds.beneficiaries b "
                          "JOIN iceberg.snds.hospital_stays h ON b.person_id = h.person_id")
    assert all(d in REGION and YEARS[0] <= a <= YEARS[1] for d, a in joined)


def test_masked_values_cannot_be_unmasked_by_predicates(sql: Any, policy: Build) -> None:
    months = sql("alice", "SELECT DISTINCT month(birth_month) FROM iceberg.snds.beneficiaries")
    assert months in ([(1,)], [])
    # The stored pseudonym never matches: the mask applies before the WHERE.
    stored = sql("dana", "SELECT person_id FROM iceberg.snds.beneficiaries WHERE residence_department = '75' "
                         "LIMIT 1")
    if stored:
        assert sql("alice", "SELECT count(*) FROM iceberg.snds.beneficiaries "
                            f"WHERE person_id = '{stored[0][0]}'") == [(0,)]


def test_show_stats_and_explain(sql: Any, policy: Build) -> None:
    # SHOW STATS FOR a table is SHOW STATS FOR its SELECT *: the granted columns only.
    table = sql("alice", "SHOW STATS FOR iceberg.snds.beneficiaries")
    assert [r[0] for r in table if r[0] is not None] == ["person_id", "birth_month", "sex_code",
                                                         "residence_department"]
    stats = sql("alice", "SHOW STATS FOR (SELECT admission_date FROM iceberg.snds.hospital_stays)")
    low, high = next((r[5], r[6]) for r in stats if r[0] == "admission_date")
    assert low is None or dt.date.fromisoformat(low) >= YEARS[0]
    assert high is None or dt.date.fromisoformat(high) <= YEARS[1]
    masked = sql("alice", "SHOW STATS FOR (SELECT birth_month FROM iceberg.snds.beneficiaries)")
    assert all(r[5] is None and r[6] is None for r in masked if r[0] == "birth_month")
    with DENIED:
        sql("alice", "EXPLAIN SELECT death_month FROM iceberg.snds.beneficiaries")
    with DENIED:
        sql("alice", "EXPLAIN ANALYZE SELECT count(*) FROM iceberg.snds.pharmacy_dispensations")
    counted = sql("alice", "SELECT count(*) FROM iceberg.snds.hospital_stays")[0][0]
    plan = sql("alice", "EXPLAIN ANALYZE SELECT count(*) FROM iceberg.snds.hospital_stays")[0][0]
    assert f"Input: {counted} row" in plan


def test_the_known_metadata_channel_is_what_the_compliance_guide_says(sql: Any, policy: Build) -> None:
    """docs/compliance.md, "Metadata channels": Trino's statistics and scan counts are the whole
    table's, before the row filter, and Trino has no setting to refuse them per user. This pins
    that documented behaviour: if a Trino upgrade closes the channel, this fails and the guide
    must be updated."""
    whole = sql("dana", "SELECT count(*) FROM iceberg.snds.beneficiaries")[0][0]
    hers = sql("alice", "SELECT count(*) FROM iceberg.snds.beneficiaries")[0][0]
    assert hers < whole
    stats = sql("alice", "SHOW STATS FOR (SELECT sex_code FROM iceberg.snds.beneficiaries)")
    assert [r[4] for r in stats if r[0] is None] == [float(whole)]
    plan = sql("alice", "EXPLAIN ANALYZE SELECT count(*) FROM iceberg.snds.beneficiaries")[0][0]
    assert f"Input: {whole} rows" in plan and f"Output: {hers} row" in plan


def test_information_schema_shows_only_what_is_granted(sql: Any, policy: Build) -> None:
    tables = set(sql("alice", "SELECT table_schema || '.' || table_name FROM iceberg.information_schema.tables "
                              "WHERE table_schema <> 'information_schema'"))
    assert tables == {("ref.icd10_chapters",), ("snds.beneficiaries",), ("snds.hospital_stays",)}
    columns = sql("alice", "SELECT column_name FROM iceberg.information_schema.columns "
                           "WHERE table_schema = 'snds' AND table_name = 'beneficiaries'")
    assert {c for (c,) in columns} == {"person_id", "birth_month", "sex_code", "residence_department"}
    assert sql("bob", "SHOW CATALOGS") == []
    assert sql("chloe", "SELECT count(*) FROM iceberg.information_schema.columns "
                        "WHERE table_schema = 'snds'") == [(0,)]


@pytest.mark.parametrize("user", ["alice", "bob", "dana", "chloe"])
def test_system_catalog_is_closed_but_to_platform_admins(sql: Any, policy: Build, user: str) -> None:
    for table in ("runtime.queries", "runtime.nodes", "metadata.catalogs", "jdbc.tables"):
        with DENIED:
            sql(user, f"SELECT count(*) FROM system.{table}")
    assert sql("pat", "SELECT count(*) FROM system.runtime.nodes")[0][0] >= 1
    with DENIED:
        sql("pat", "SELECT count(*) FROM iceberg.snds.beneficiaries")


def test_table_functions_procedures_and_session_properties(sql: Any, policy: Build) -> None:
    with DENIED:
        sql("alice", "SELECT * FROM TABLE(iceberg.system.table_changes('snds', 'hospital_stays', 0, "
                     "9223372036854775807))")
    with DENIED:
        sql("alice", "CALL iceberg.system.rollback_to_snapshot('snds', 'hospital_stays', 1)")
    with DENIED:
        sql("alice", "SET SESSION query_max_run_time = '1h'")


def test_quoting_and_case_variants(sql: Any, policy: Build) -> None:
    plain = sql("alice", "SELECT count(*) FROM iceberg.snds.beneficiaries")
    for name in ('ICEBERG.SNDS.BENEFICIARIES', '"iceberg"."snds"."beneficiaries"', 'iceberg."SNDS"."Beneficiaries"'):
        assert sql("alice", f"SELECT count(*) FROM {name}") == plain
    with DENIED:
        sql("alice", 'SELECT "DEATH_MONTH" FROM iceberg.snds.beneficiaries')
    with HIDDEN:
        sql("alice", 'SELECT * FROM iceberg.snds."BENEFICIARIES$FILES"')
    with DENIED:
        sql("alice", 'SELECT count(*) FROM iceberg."OPS"."Quarantine"')


def test_time_travel_keeps_masks_and_filters(sql: Any, catalog: Any, policy: Build) -> None:
    table = catalog.load_table(("snds", "hospital_stays"))
    first = table.history()[0].snapshot_id
    rows = sql("alice", f"SELECT admission_date, main_diagnosis FROM iceberg.snds.hospital_stays "
                        f"FOR VERSION AS OF {first}")
    assert all(YEARS[0] <= a <= YEARS[1] and len(d) <= 3 for a, d in rows)
    with DENIED:
        sql("alice", f"SELECT death_month FROM iceberg.snds.beneficiaries FOR TIMESTAMP AS OF "
                     f"TIMESTAMP '{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC'")


def test_writes_ctas_and_views(sql: Any, policy: Build, scratch_namespace: str) -> None:
    with DENIED:
        sql("alice", "CREATE TABLE iceberg.snds.mine AS SELECT stay_id FROM iceberg.snds.hospital_stays")
    with DENIED:
        sql("alice", f"CREATE TABLE iceberg.{scratch_namespace}.mine AS SELECT 1 AS x")
    with DENIED:
        sql("alice", "CREATE VIEW iceberg.snds.mine AS SELECT stay_id FROM iceberg.snds.hospital_stays")
    with DENIED:
        sql("alice", "INSERT INTO iceberg.snds.hospital_stays SELECT * FROM iceberg.snds.hospital_stays LIMIT 0")
    # A copy or a view made by a data engineer is a new name: no project rule reaches it.
    copy = f"iceberg.{scratch_namespace}.copy_{uuid.uuid4().hex[:6]}"
    sql("dana", f"CREATE TABLE {copy} AS SELECT * FROM iceberg.snds.beneficiaries")
    view = f"iceberg.snds.it_view_{uuid.uuid4().hex[:6]}"
    sql("dana", f"CREATE VIEW {view} AS SELECT * FROM iceberg.snds.beneficiaries")
    try:
        with DENIED:
            sql("alice", f"SELECT count(*) FROM {copy}")
        with DENIED:
            sql("alice", f"SELECT count(*) FROM {view}")
    finally:
        sql("dana", f"DROP VIEW {view}")


def test_an_ended_project_gives_no_access(sql: Any, policy: Build) -> None:
    ended = next(p for p in policy.policies.projects if p.id == "antidiabetics_2023")
    assert ended.end < dt.date.today() and "bob" in ended.members
    for dataset in ended.datasets:
        with pytest.raises(trino.exceptions.TrinoUserError, match="Access Denied"):
            sql("bob", f"SELECT count(*) FROM iceberg.{dataset.full_name}")
