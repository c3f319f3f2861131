"""The demo: a small table loaded and a researcher's question answered, for `santelake up`."""

from __future__ import annotations

from santelake.runtime.layout import Layout

DEMO_NAMESPACE = "demo"
DEMO_TABLE = "stays_by_chapter"
QUESTION = ("SELECT icd10_chapter, year, count(*) AS stays FROM iceberg.demo.stays_by_chapter "
            "GROUP BY icd10_chapter, year ORDER BY year, icd10_chapter")


def load(layout: Layout, rows: int = 20_000) -> None:
    import numpy as np
    import pyarrow as pa

    from santelake.lake.catalog import open_catalog

    catalog = open_catalog(layout)
    catalog.create_namespace_if_not_exists(DEMO_NAMESPACE)
    identifier = (DEMO_NAMESPACE, DEMO_TABLE)
    if catalog.table_exists(identifier):
        return
    rng = np.random.default_rng(7)
    chapters = np.array(["I", "II", "IV", "IX", "X", "XI", "XIX"])
    data = pa.table({
        "stay_id": pa.array(np.arange(rows, dtype=np.int64)),
        "icd10_chapter": pa.array(chapters[rng.integers(0, len(chapters), rows)]),
        "year": pa.array(rng.integers(2019, 2025, rows).astype(np.int32)),
    })
    table = catalog.create_table(identifier, schema=data.schema)
    table.append(data)


def answer(layout: Layout, user: str = "alice") -> str:
    from santelake.access import query
    from santelake.access.token import dev_token

    names, rows = query.run(layout, dev_token(layout, user), QUESTION)
    return f"Researcher {user!r} asks: {QUESTION}\n" + query.format_table(names, rows)
