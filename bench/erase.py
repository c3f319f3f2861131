"""Erasing persons from a large lake: time and peak memory, beside rewriting the affected files once.

A claims table of --rows rows (default 10M) over --persons distinct persons is written into
a bucket of its own on the running stack's MinIO, with a SQLite catalog of its own (the
product's catalog and lake are not touched). Each claims file holds every person, as a
lake's loads do over time, so erasing many persons touches every file. Then, each in a
fresh child process so its peak resident memory is its own:
  rewrite   the floor: each affected data file read, the persons' rows dropped, written
            again once (pyiceberg's writer, no commit): what any erasure must at least do;
  erasure   santelake's erasure (santelake/erasure/erase.py) of --erase persons: register,
            rewrite, expire, orphans, landing, versions, and the proof reading every object.
The stack must be up (santelake up). Results print as a table; the ratio is erasure / rewrite.

usage: .venv/bin/python bench/erase.py [--rows 10000000] [--persons 200000] [--erase 1000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import uuid

COMMON = r"""
import json, sys, time, resource
from pathlib import Path
import pyarrow as pa
import pyarrow.parquet
from santelake.config import load_settings
from santelake.ingest import runner
from santelake.lake.catalog import lake_properties, open_sql_catalog
from santelake.runtime.layout import Layout
from santelake.runtime.services.minio import Minio, ROOT_USER
layout = Layout(load_settings())
work, bucket, landing = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
password = layout.secrets.get("minio-root-password")
endpoint = f"https://{layout.settings.hostname}:{layout.settings.minio_port}"
catalog = open_sql_catalog(lake_properties(f"sqlite:///{work / 'catalog.db'}", bucket, endpoint, ROOT_USER, password,
                                           layout.tls.ca_cert))
client = Minio(layout).client()
declared = runner.schemas()["snds.outpatient_claims"]
def persons(n):
    # Random-looking, as pseudonyms are (a 64-character run of zeros would share its bound prefix).
    import hashlib
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

PREFILL = COMMON + r"""
import numpy as np
from santelake.lake.append import ChunkedAppend
from santelake.schema import ensure_table, to_arrow_schema
from santelake.synth.columns import plain_claims
rows, count = int(sys.argv[4]), int(sys.argv[5])
for namespace in ("snds", "ops"):
    catalog.create_namespace_if_not_exists(namespace)
table = ensure_table(catalog, declared)[0]
schema = to_arrow_schema(declared)
everyone = pa.array(persons(count))
appender, chunk, done = ChunkedAppend(table), 1_000_000, 0
while done < rows:
    n = min(chunk, rows - done)
    ids = np.arange(done, done + n)
    appender.write(plain_claims(ids, pa.array(np.char.zfill(ids.astype(str), 13)),
                                everyone.take(pa.array(ids % count))).select(schema.names).cast(schema))
    done += n
appender.commit({})
tasks = list(table.refresh().scan().plan_files())
print(json.dumps({"files": len(tasks), "location": table.metadata.location, "sample": tasks[0].file.file_path}))
"""

REWRITE = COMMON + r"""
import pyarrow.compute as pc
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan, _dataframe_to_data_files
erase = pa.array(persons(int(sys.argv[4])))
table = catalog.load_table(declared.identifier)
start = time.perf_counter()
written, dropped = [], 0
for task in table.scan().plan_files():
    rows = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue()).to_table([task])
    kept = rows.filter(pc.invert(pc.is_in(rows.column("person_id"), value_set=erase)))
    dropped += rows.num_rows - kept.num_rows
    written += list(_dataframe_to_data_files(table_metadata=table.metadata, df=kept, io=table.io))
seconds = time.perf_counter() - start
for data_file in written:  # the floor writes, it does not commit: the erasure runs on the same table next
    table.io.delete(data_file.file_path)
print(json.dumps({"seconds": seconds, "rows_dropped": dropped, "peak_mib": peak_mib()}))
"""

ERASE = COMMON + r"""
from santelake.erasure.erase import Erasure, Persons
from santelake.pseudonymise import Pseudonymiser
marks = {}
def log(line):
    marks[line] = time.perf_counter()
schemas = {declared.full_name: declared}
erasure = Erasure(catalog, schemas, Pseudonymiser.from_key(bytes(range(32))), client, bucket, landing, log=log)
start = time.perf_counter()
report = erasure.run(Persons(frozenset(persons(int(sys.argv[4])))))
end = time.perf_counter()
names = [m for m in marks if m.startswith("step ")]
steps = {names[i][5:]: (marks[names[i + 1]] if i + 1 < len(names) else end) - marks[names[i]]
         for i in range(len(names))}
table = catalog.load_table(declared.identifier)
paths = [task.file.file_path for task in table.scan().plan_files()]
assert len(set(paths)) == len(paths), "two data files of the table share a path"
rows_after = sum(pa.parquet.ParquetFile(pa.BufferReader(table.io.new_input(p).open().read())).metadata.num_rows
                 for p in paths)
print(json.dumps({"seconds": end - start, "steps": steps, "files_after": len(paths), "rows_after": rows_after,
                  "rows_dropped": sum(t.rows_deleted for t in report.tables),
                  "objects_read": report.proof.objects, "mb_read": report.proof.bytes / 1e6,
                  "clean": report.proof.clean, "hits": report.proof.summary()["hit_locations"][:5],
                  "peak_mib": peak_mib()}))
"""


def child(script: str, *args: str) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"bench child failed:\n{result.stderr[-4000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--persons", type=int, default=200_000)
    parser.add_argument("--erase", type=int, default=1_000)
    args = parser.parse_args()

    from santelake.config import load_settings
    from santelake.runtime.layout import Layout
    from santelake.runtime.services.minio import Minio

    client = Minio(Layout(load_settings())).client()
    bucket, landing = f"bench-erase-{uuid.uuid4().hex[:8]}", f"bench-erase-landing-{uuid.uuid4().hex[:8]}"
    for name in (bucket, landing):
        client.make_bucket(name)
    try:
        with tempfile.TemporaryDirectory(prefix="santelake-bench-erase-") as work:
            lake = child(PREFILL, work, bucket, landing, str(args.rows), str(args.persons))
            floor = child(REWRITE, work, bucket, landing, str(args.erase))
            erased = child(ERASE, work, bucket, landing, str(args.erase))
            erased["objects_after"] = sum(1 for _ in client.list_objects(bucket, recursive=True))
    finally:
        for name in (bucket, landing):
            for item in client.list_objects(name, recursive=True):
                client.remove_object(name, item.object_name)
            client.remove_bucket(name)
    assert erased["clean"], f"the erasure's proof found an erased person: {erased['hits']}"
    assert erased["rows_dropped"] == floor["rows_dropped"], (erased, floor)
    # Counted from the files themselves, not from what the erasure says it did.
    assert erased["rows_after"] == args.rows - floor["rows_dropped"], (erased["rows_after"], floor)  # type: ignore[operator]
    steps = erased["steps"]
    assert isinstance(steps, dict)
    print(f"(table at {lake['location']}, e.g. {lake['sample']})")
    print(f"lake: {args.rows:,} claims of {args.persons:,} persons in {lake['files']} data files; "
          f"erasing {args.erase:,} persons ({floor['rows_dropped']:,} rows)")
    print(f"{'run':10} {'seconds':>8} {'peak RSS MiB':>13}")
    print(f"{'rewrite':10} {floor['seconds']:8.1f} {floor['peak_mib']:13.0f}")
    print(f"{'erasure':10} {erased['seconds']:8.1f} {erased['peak_mib']:13.0f}")
    print("erasure steps: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in steps.items()))
    print(f"proof: {erased['objects_read']} objects, {erased['mb_read']:.0f} MB read; after the erasure the table "
          f"reads {erased['files_after']} data files, the bucket holds {erased['objects_after']} objects")
    print(f"ratio erasure / rewrite: {erased['seconds'] / floor['seconds']:.2f} (goal: at most 2)")  # type: ignore[operator]


if __name__ == "__main__":
    main()
