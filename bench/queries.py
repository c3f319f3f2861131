"""Researcher queries: Trino against DuckDB on the same Parquet files, and a restricted researcher.

The stack must be up in a state folder of the bench's own, without the demo, for example
``SANTELAKE_STATE_DIR=/var/tmp/santelake-q10 santelake up --only minio postgres keycloak audit trino``:
the bench loads ``--persons`` synthetic persons (500,000 give about 10.6M rows; 2,500,000
about 53M) into ``snds`` through the product's loader, unless the lake already holds exactly
that synthetic population (a second run reuses it). A lake holding anything else is refused.

Then it copies the current snapshot's data files (the very Parquet files Trino reads) into
``--work``, and runs the suite below:
- in DuckDB (2 threads) on those files;
- in Trino as the data engineer dana (no row filter, no mask);
- in Trino as the researcher alice (project cardio_outcomes: a row filter and masks on both
  tables), for the queries her project may run.
The whole suite first runs ``--warmup`` times on each (Trino's JIT compiles its hot code over
the first runs), then each query ``--runs`` times; the median is printed. dana's answers
must equal DuckDB's, or the bench stops: a fast wrong answer is no result.

Each Trino user keeps one connection open, as a researcher's tool does. Printed: per query the
three medians and the ratios, then the geometric means, and Trino's floor: the median time of
``SELECT 1``, with the geometric mean that floor alone would set were Trino's work as fast as DuckDB's.

usage: .venv/bin/python bench/queries.py --persons 500000 --work /var/tmp/santelake-q10-work [--runs 5] [--warmup 2]
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from santelake.runtime.layout import Layout


@dataclass(frozen=True)
class Query:
    name: str
    sql: str  # one text for both engines; {person} is a person_id the user may see
    restricted: bool = False  # only beneficiaries and hospital_stays: alice's project runs it too


SUITE = (
    Query("claims_by_year", "SELECT year(care_date) AS y, count(*) AS n, sum(amount_reimbursed) AS net "
          "FROM snds.outpatient_claims GROUP BY 1 ORDER BY 1"),
    Query("top_diagnoses", "SELECT main_diagnosis, count(*) AS n FROM snds.hospital_stays "
          "GROUP BY 1 ORDER BY n DESC, 1 LIMIT 20", restricted=True),
    Query("stays_by_sex_year", "SELECT b.sex_code, year(s.admission_date) AS y, count(*) AS n "
          "FROM snds.hospital_stays s JOIN snds.beneficiaries b ON s.person_id = b.person_id "
          "GROUP BY 1, 2 ORDER BY 1, 2", restricted=True),
    Query("stays_by_department", "SELECT b.residence_department, count(*) AS n, "
          "avg(date_diff('day', s.admission_date, s.discharge_date)) AS mean_days "
          "FROM snds.hospital_stays s JOIN snds.beneficiaries b ON s.person_id = b.person_id "
          "GROUP BY 1 ORDER BY 1", restricted=True),
    Query("claims_by_department", "SELECT b.residence_department, count(*) AS n, sum(c.amount_reimbursed) AS net "
          "FROM snds.outpatient_claims c JOIN snds.beneficiaries b ON c.person_id = b.person_id "
          "GROUP BY 1 ORDER BY 1"),
    Query("heart_failure_readmissions",
          "WITH first_stay AS (SELECT person_id, min(admission_date) AS day FROM snds.hospital_stays "
          "WHERE main_diagnosis LIKE 'I50%' AND admission_date BETWEEN DATE '2021-01-01' AND DATE '2022-12-31' "
          "GROUP BY person_id), "
          "readmitted AS (SELECT DISTINCT s.person_id FROM snds.hospital_stays s JOIN first_stay f "
          "ON s.person_id = f.person_id WHERE s.admission_date > f.day "
          "AND s.admission_date <= f.day + INTERVAL '90' DAY) "
          "SELECT count(*) AS persons, count(r.person_id) AS readmitted "
          "FROM first_stay f LEFT JOIN readmitted r ON f.person_id = r.person_id", restricted=True),
    Query("antidiabetic_persons", "SELECT count(DISTINCT person_id) AS persons FROM snds.pharmacy_dispensations "
          "WHERE atc_code LIKE 'A10%'"),
    Query("one_person_history",
          "SELECT 'stay' AS kind, admission_date AS day FROM snds.hospital_stays WHERE person_id = '{person}' "
          "UNION ALL SELECT 'claim', care_date FROM snds.outpatient_claims WHERE person_id = '{person}' "
          "UNION ALL SELECT 'dispensing', dispensing_date FROM snds.pharmacy_dispensations "
          "WHERE person_id = '{person}' "
          "UNION ALL SELECT 'consultation', consultation_date FROM snds.gp_consultations "
          "WHERE person_id = '{person}' ORDER BY 2, 1"),
    Query("one_person_stays", "SELECT admission_date, discharge_date, main_diagnosis FROM snds.hospital_stays "
          "WHERE person_id = '{person}' ORDER BY 1, 3", restricted=True),
    Query("claims_one_week", "SELECT care_date, count(*) AS n, sum(amount_paid) AS paid FROM snds.outpatient_claims "
          "WHERE care_date BETWEEN DATE '2023-03-06' AND DATE '2023-03-12' GROUP BY 1 ORDER BY 1"),
    Query("teleconsultations", "SELECT year(consultation_date) AS y, consultation_type, count(*) AS n "
          "FROM snds.gp_consultations GROUP BY 1, 2 ORDER BY 1, 2"),
)
TABLES = ("beneficiaries", "hospital_stays", "outpatient_claims", "pharmacy_dispensations", "gp_consultations")
SEED = 11


def settings_and_catalog() -> tuple[Layout, Any, Any]:
    from santelake.config import load_settings
    from santelake.lake.catalog import open_catalog
    from santelake.runtime.platform import platform_settings

    layout = Layout(load_settings())
    settings = platform_settings(layout)
    return layout, settings, open_catalog(settings)


def lake_rows(catalog: Any) -> dict[str, int]:
    """Rows of each snds table in its current snapshot (0 for a table not there yet)."""
    counts = {}
    for name in TABLES:
        try:
            snapshot = catalog.load_table(f"snds.{name}").current_snapshot()
        except Exception:  # no such table: nothing loaded yet
            snapshot = None
        counts[name] = int(snapshot.summary["total-records"]) if snapshot else 0
    return counts


def prepare_lake(settings: Any, catalog: Any, persons: int, work: Path) -> dict[str, int]:
    """The synthetic population of ``persons`` in the lake: loaded now, or found there from a run before."""
    from santelake.ingest import runner
    from santelake.synth import synthesize

    counts = lake_rows(catalog)
    if counts["beneficiaries"] == persons:
        return counts
    if any(counts.values()):
        raise SystemExit(f"the lake holds {counts}, not the bench's {persons:,} persons: start a stack in a "
                         "state folder of its own, without the demo (see this script's help)")
    extracts = work / "extracts"
    if not (extracts / "gp_consultations.parquet").exists():
        began = time.perf_counter()
        synthesize(extracts, scale=persons, seed=SEED)
        print(f"(synthesised {persons:,} persons in {time.perf_counter() - began:.0f} s)", flush=True)
    loader = runner.loader(settings, catalog)
    for declared in runner.sources():
        assert declared.source is not None  # runner.sources() lists the tables loaded from files
        began = time.perf_counter()
        result = loader.load(declared.full_name, extracts / declared.source.file)
        print(f"(loaded {declared.full_name}: {result.rows_published:,} rows in "
              f"{time.perf_counter() - began:.0f} s)", flush=True)
    return lake_rows(catalog)


def export_snapshot(catalog: Any, work: Path) -> dict[str, int]:
    """Copy each table's current data files into work/parquet/<table>/; the snapshot ids copied."""
    snapshots = {}
    for name in TABLES:
        table = catalog.load_table(f"snds.{name}")
        snapshot = table.current_snapshot()
        target = work / "parquet" / name
        stamp = target / "snapshot"
        if stamp.exists() and int(stamp.read_text()) == snapshot.snapshot_id:
            snapshots[name] = snapshot.snapshot_id
            continue
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob("*.parquet"):
            old.unlink()
        for n, task in enumerate(table.scan().plan_files()):
            if task.delete_files:
                raise SystemExit(f"snds.{name} has delete files: its data files alone are not its rows")
            with table.io.new_input(task.file.file_path).open() as source:
                (target / f"{n:05d}.parquet").write_bytes(source.read())
        stamp.write_text(str(snapshot.snapshot_id))
        snapshots[name] = snapshot.snapshot_id
    return snapshots


def normalise(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows comparable across engines: floats to 9 significant digits, decimals exact, order kept."""
    def value(v: Any) -> Any:
        if isinstance(v, float):
            return float(f"{v:.9g}")
        if isinstance(v, decimal.Decimal):
            return v.normalize()
        if isinstance(v, datetime.datetime):
            return v.date() if v.time() == datetime.time() else v
        return v
    return [tuple(value(v) for v in row) for row in rows]


def timed(run: Callable[[str], list[tuple[Any, ...]]], sql: str, runs: int) -> tuple[float, list[tuple[Any, ...]]]:
    rows: list[tuple[Any, ...]] = []
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        rows = run(sql)
        times.append(time.perf_counter() - began)
    return statistics.median(times), rows


def duckdb_runner(work: Path) -> Callable[[str], list[tuple[Any, ...]]]:
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET threads = 2")
    connection.execute("CREATE SCHEMA snds")
    for name in TABLES:
        files = (work / "parquet" / name).as_posix() + "/*.parquet"
        # The bench's own table names and folder: nothing from outside reaches this SQL.
        connection.execute(f"CREATE VIEW snds.{name} AS SELECT * FROM read_parquet('{files}')")  # noqa: S608

    def run(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in connection.execute(sql).fetchall()]
    return run


def sql_literal(value: object) -> str:
    """A JSON value as SQL: strings quoted, booleans and numbers as they are."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def trino_runner(layout: Layout, user: str, session: dict[str, object] | None = None,
                 ) -> Callable[[str], list[tuple[Any, ...]]]:
    """One connection kept open, as a researcher's tool keeps it (DBeaver, a notebook): its HTTPS
    session is reused from query to query. A new one (new token) every 240 s. ``session``: Trino
    session properties set on each connection (the client keeps what SET SESSION set)."""
    from santelake.access import query
    from santelake.access.token import dev_token

    def connect() -> Any:
        connection = query.connect(layout, dev_token(layout, user))
        for name, value in (session or {}).items():
            connection.cursor().execute(f"SET SESSION {name} = {sql_literal(value)}").fetchall()
        return connection

    connection, issued = connect(), time.monotonic()

    def run(sql: str) -> list[tuple[Any, ...]]:
        nonlocal connection, issued
        if time.monotonic() - issued > 240:  # Keycloak's tokens live 300 s
            connection.close()
            connection, issued = connect(), time.monotonic()
        cursor = connection.cursor()
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
    return run


def geometric_mean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, required=True)
    parser.add_argument("--work", type=Path, required=True, help="extracts and exported Parquet; reused")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2, help="rounds of the whole suite before timing")
    parser.add_argument("--only", nargs="*", help="run only these queries")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    layout, settings, catalog = settings_and_catalog()
    counts = prepare_lake(settings, catalog, args.persons, args.work)
    print(f"lake: {sum(counts.values()):,} rows ({', '.join(f'{n} {c:,}' for n, c in counts.items())})")
    export_snapshot(catalog, args.work)

    duck = duckdb_runner(args.work)
    dana, alice = trino_runner(layout, "dana"), trino_runner(layout, "alice")
    person = duck("SELECT person_id FROM snds.hospital_stays ORDER BY person_id LIMIT 1 OFFSET 1000")[0][0]
    alice_person = alice("SELECT person_id FROM iceberg.snds.hospital_stays ORDER BY person_id LIMIT 1")[0][0]

    suite = [q for q in SUITE if not args.only or q.name in args.only]
    for _ in range(args.warmup):
        for q in suite:
            duck(q.sql.replace("{person}", person))
            dana(q.sql.replace("{person}", person))
            if q.restricted:
                alice(q.sql.replace("{person}", alice_person))
    figures: dict[str, dict[str, float]] = {}
    print(f"{'query':28} {'DuckDB s':>9} {'Trino s':>8} {'ratio':>6} {'alice s':>8} {'alice/dana':>10}", flush=True)
    for q in suite:
        sql = q.sql.replace("{person}", person)
        duck_s, expected = timed(duck, sql, args.runs)
        trino_s, got = timed(dana, sql, args.runs)
        if normalise(got) != normalise(expected):
            raise SystemExit(f"{q.name}: Trino's answer differs from DuckDB's\nTrino:  {got[:5]}\n"
                             f"DuckDB: {expected[:5]}")
        row = {"duckdb": duck_s, "trino": trino_s}
        alice_text = ""
        if q.restricted:
            row["alice"], _ = timed(alice, q.sql.replace("{person}", alice_person), args.runs)
            alice_text = f"{row['alice']:>8.2f} {row['alice'] / trino_s:>10.2f}"
        figures[q.name] = row
        print(f"{q.name:28} {duck_s:>9.3f} {trino_s:>8.2f} {trino_s / duck_s:>6.1f} {alice_text}", flush=True)

    # Trino's fixed cost of any query (parse, plan, schedule, the client protocol), measured on the
    # smallest one; and the geometric mean it alone sets, were Trino's work as fast as DuckDB's.
    floor_runs = max(args.runs, 20)
    floor, _ = timed(dana, "SELECT 1", floor_runs)
    ratios = [r["trino"] / r["duckdb"] for r in figures.values()]
    bound = geometric_mean([(r["duckdb"] + floor) / r["duckdb"] for r in figures.values()])
    print(f"Trino's floor (SELECT 1, median of {floor_runs}): {floor * 1000:.0f} ms; the geometric "
          f"mean with every query at DuckDB's time plus that floor: {bound:.2f}x")
    restricted = [(r["alice"], r["trino"]) for r in figures.values() if "alice" in r]
    print(f"geometric mean Trino/DuckDB: {geometric_mean(ratios):.2f}x; slowest Trino query: "
          f"{max(r['trino'] for r in figures.values()):.2f} s")
    if restricted:
        print(f"alice/dana on her project's queries (geometric mean): "
              f"{geometric_mean([a / d for a, d in restricted]):.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"counts": counts, "figures": figures, "select_1": floor}, indent=2))


if __name__ == "__main__":
    main()
