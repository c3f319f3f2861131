"""The peer of bench/ingest.py: Trino's ``INSERT INTO <iceberg table> SELECT ... FROM <the CSV>``.

The bench starts its own Trino, never the product's: the same verified server tarball the
runtime uses, unpacked once with the iceberg and hive plugins into
``<cache_dir>/bench/trino-<version>-iceberg-hive``, on Java 25, one node (the coordinator
also works), 2 GB heap, bound to 127.0.0.1 on free ports. Two catalogs:
  iceberg  the product's JDBC catalog (same PostgreSQL database, role, warehouse bucket,
           MinIO over HTTPS verified with the santelake CA, Trino's storage account);
  hive     a file metastore on the local file system, whose one external CSV table reads
           the very file the other runners read (hard-linked, not copied).
For each file it creates ``iceberg.bench_peer_<hex>.<table>`` with the declared schema and
partitioning, times the INSERT ... SELECT alone, then drops the table and the namespace.

What the peer does: parse the CSV, convert each column to its lake type (dates parsed,
decimals and integers cast), write Parquet and commit to Iceberg. What it does NOT do, unlike
the santelake loader: no pseudonymisation (identifiers are written in clear), no row rules,
no duplicate check, no Great Expectations audit, no quarantine. It is the cost of moving the
bytes with a mature engine, not a replacement for the loader.

Peak RSS is the JVM's VmHWM: reset (``5`` into /proc/<pid>/clear_refs) just before the
INSERT and read just after it, so it is the peak during that INSERT, heap already committed
by earlier statements included.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from santelake.locations import schemas_dir
from santelake.names import CATALOG_NAME, CATALOG_ROLE, WAREHOUSE_BUCKET
from santelake.render import trino as render
from santelake.runtime.artifacts import TRINO_SERVER, fetch_maven
from santelake.runtime.java import find_java_home
from santelake.runtime.layout import Layout
from santelake.runtime.process import run_checked, tail
from santelake.runtime.services.minio import Minio
from santelake.runtime.services.postgres import role_password_key
from santelake.schema.loader import load_table_schema
from santelake.schema.model import Column, SourceFormat, TableSchema, Transform

PLUGINS = ("iceberg", "hive")
HEAP = "2G"
USER = "santelake-bench"
START_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0
HIVE_SCHEMA = "bench"
PROBE_TABLE = "hive.bench.ready_probe"
PROBE_QUERY = "SELECT count(*) FROM hive.bench.ready_probe"


def server_home(cache_dir: Path) -> Path:
    """The bench's Trino, unpacked once per version from the verified cached tarball (outside the repo)."""
    parent = cache_dir / "bench" / f"trino-{TRINO_SERVER.version}-{'-'.join(PLUGINS)}"
    home = parent / f"trino-server-{TRINO_SERVER.version}"
    if not (home / "bin" / "launcher").exists():
        from santelake.runtime.services.trino import unpack_trino

        archive = fetch_maven(TRINO_SERVER, cache_dir)
        parent.mkdir(parents=True, exist_ok=True)
        unpack_trino(archive, parent, PLUGINS)
    return home


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TrinoQueryError(RuntimeError):
    pass


@dataclass
class QueryResult:
    rows: list[list[Any]] = field(default_factory=list)
    update_count: int | None = None


class BenchTrino:
    """One throwaway Trino process for one bench run; ``with BenchTrino(layout) as trino: ...``."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.root = Path(tempfile.mkdtemp(prefix="santelake-bench-trino-"))
        # local.location: the hive catalog's file metastore and the CSV tables live under it.
        self.files = self.root / "files"
        self.server_log = self.root / "server.log"
        self.launcher_log = self.root / "launcher.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.unpack_seconds = 0.0
        # From the launcher's start to the first scan of a catalog's table succeeding (see _ready).
        self.start_seconds = 0.0
        self.session = requests.Session()
        # REQUESTS_CA_BUNDLE and proxies from the environment must not apply to a loopback HTTP server.
        self.session.trust_env = False

    def __enter__(self) -> BenchTrino:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_etc(self, etc: Path, truststore: Path) -> None:
        params = render.TrinoParams(
            etc_dir=str(etc), node_id="santelake-bench-1", environment="santelake_bench",
            bind_ip="127.0.0.1", internal_address="127.0.0.1", http_port=self.port, https_port=0,
            keystore_path="", truststore_path=str(truststore), jwks_ca_path="", issuer="", audience="",
            catalog_name=CATALOG_NAME, catalog_jdbc_url=self.layout.catalog_jdbc_url, catalog_user=CATALOG_ROLE,
            warehouse=f"s3://{WAREHOUSE_BUCKET}/", s3_endpoint=self.layout.url("minio"), heap=HEAP,
            log_path=str(self.server_log),
        )
        files = {
            "node.properties": render.node_properties(params, str(self.root / "data")),
            # A heap dump on OOM goes to the run folder (removed afterwards), not into the cached server.
            "jvm.config": render.jvm_config(params) + f"-XX:HeapDumpPath={self.root}\n",
            # A throwaway bench process on loopback only: plain HTTP, no authentication, allow-all
            # access control (Trino's default without an access-control file; written to be explicit).
            # One node, no web UI; Trino has no telemetry or update check to turn off.
            "config.properties": "\n".join([
                "coordinator=true",
                "node-scheduler.include-coordinator=true",
                f"http-server.http.port={self.port}",
                f"discovery.uri={self.url}",
                f"query.max-memory={params.query_max_memory}",
                f"query.max-memory-per-node={params.query_max_memory_per_node}",
                "web-ui.enabled=false",
                f"log.path={self.server_log}",
            ]) + "\n",
            "access-control.properties": "access-control.name=allow-all\n",
            "log.properties": render.log_properties(),
            # The product's catalog, rendered by the product's function (secrets stay ${ENV:...}).
            "catalog/iceberg.properties": render.iceberg_catalog(params),
            # Hive connector, file metastore on the local file system: keys from
            # trino.io/docs/current/object-storage/file-system-local.html (fs.native-local.enabled,
            # local.location: a plain path; locations are then local:///<path under it>) and
            # FileHiveMetastoreConfig (hive.metastore=file, hive.metastore.catalog.dir).
            "catalog/hive.properties": "\n".join([
                "connector.name=hive",
                "hive.metastore=file",
                "hive.metastore.catalog.dir=local:///metastore",
                "fs.native-local.enabled=true",
                f"local.location={self.files}",
            ]) + "\n",
        }
        for relative, content in files.items():
            path = etc / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)

    def start(self) -> None:
        s = self.layout.settings
        started = time.monotonic()
        home = server_home(s.cache_dir)
        self.unpack_seconds = time.monotonic() - started
        java_home = find_java_home(s.java_home)
        etc = self.root / "etc"
        truststore = self.root / "truststore.p12"
        (self.files / "metastore").mkdir(parents=True)
        (self.files / "ready_probe").mkdir()
        (self.files / "ready_probe" / "line.csv").write_text("ready\n")
        run_checked([
            str(java_home / "bin" / "keytool"), "-J-Dkeystore.pkcs12.certProtectionAlgorithm=NONE",
            "-J-Dkeystore.pkcs12.macAlgorithm=NONE", "-importcert", "-noprompt", "-alias", "santelake-ca",
            "-file", str(self.layout.tls.ca_cert), "-keystore", str(truststore), "-storetype", "PKCS12",
            "-storepass", secrets.token_urlsafe(16),
        ], "creating the bench Trino's truststore")
        self.port = free_port()
        self._write_etc(etc, truststore)
        access, secret = Minio(self.layout).credentials("trino")
        env = {
            "PATH": f"{java_home}/bin:" + os.environ.get("PATH", "/usr/bin:/bin"),
            "JAVA_HOME": str(java_home),
            "HOME": str(self.root),
            render.ENV_CATALOG_PASSWORD: self.layout.secrets.get(role_password_key(CATALOG_ROLE)),
            render.ENV_S3_ACCESS_KEY: access,
            render.ENV_S3_SECRET_KEY: secret,
        }
        with self.launcher_log.open("wb") as log:
            # Its own process group, so stop() ends the launcher, the JVM and anything they started.
            self.process = subprocess.Popen(
                [str(home / "bin" / "launcher"), "run", f"--etc-dir={etc}", f"--data-dir={self.root / 'data'}"],
                env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        started = time.monotonic()
        deadline = started + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                self._fail(f"exited with code {self.process.returncode} while starting")
            if self._ready():
                break
            if time.monotonic() > deadline:
                self._fail(f"not ready after {START_TIMEOUT:.0f}s")
            time.sleep(0.5)
        self.start_seconds = time.monotonic() - started

    def _ready(self) -> bool:
        """Started, and able to scan a catalog's table.

        /v1/info says starting=false, and system tables answer, a few seconds before the node
        scheduler sees the node serving the catalogs: a query scanning a catalog's table then
        fails with NO_NODES_AVAILABLE. So the probe is a scan of a one-line CSV table.
        """
        try:
            info = self.session.get(f"{self.url}/v1/info", timeout=5).json()
            if info.get("starting") is not False:
                return False
            self.execute(f"CREATE SCHEMA IF NOT EXISTS hive.{HIVE_SCHEMA}")
            self.execute(f"CREATE TABLE IF NOT EXISTS {PROBE_TABLE} (line varchar) "
                         "WITH (format = 'CSV', external_location = 'local:///ready_probe')")
            self.execute(PROBE_QUERY)
        except (requests.RequestException, ValueError, TrinoQueryError):
            return False
        return True

    def _fail(self, what: str) -> None:
        raise RuntimeError(
            f"bench Trino on port {self.port} {what}\nlast lines of {self.server_log}:\n{tail(self.server_log)}\n"
            f"last lines of {self.launcher_log}:\n{tail(self.launcher_log)}"
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=STOP_TIMEOUT)
            # Whatever is left in its group (the JVM past the timeout, any helper) is killed.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.session.close()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def jvm_pid(self) -> int:
        """The JVM's pid: ``launcher run`` execs java, so it is the launcher's pid (checked)."""
        assert self.process is not None
        pid = self.process.pid
        if not os.readlink(f"/proc/{pid}/exe").endswith("/java"):
            raise RuntimeError(f"bench Trino pid {pid} is not a JVM ({os.readlink(f'/proc/{pid}/exe')})")
        return pid

    def execute(self, sql: str) -> QueryResult:
        """Run one statement through Trino's client REST protocol and wait for its end."""
        headers = {"X-Trino-User": USER, "X-Trino-Source": "santelake-bench"}
        response = self.session.post(f"{self.url}/v1/statement", data=sql.encode(), headers=headers, timeout=60)
        response.raise_for_status()
        result = QueryResult()
        while True:
            body = response.json()
            if "error" in body:
                error = body["error"]
                raise TrinoQueryError(f"{error.get('errorName')}: {error.get('message')}\nin: {sql}")
            result.rows += body.get("data", [])
            if body.get("updateCount") is not None:
                result.update_count = int(body["updateCount"])
            next_uri = body.get("nextUri")
            if not next_uri:
                return result
            response = self.session.get(next_uri, headers=headers, timeout=60)
            response.raise_for_status()

    def reset_peak_rss(self) -> None:
        # Linux 4.0+: writing 5 to clear_refs resets VmHWM to the current resident size.
        Path(f"/proc/{self.jvm_pid}/clear_refs").write_text("5")

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.jvm_pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc/<pid>/status")


# The peer's SQL, derived from the table's declaration so it follows the schema.

_TRINO_TYPES = {"string": "varchar", "int": "integer", "long": "bigint", "date": "date", "boolean": "boolean",
                "double": "double", "float": "real"}
_PARTITION_TRANSFORMS = ("identity", "year", "month", "day", "hour")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def trino_type(column: Column) -> str:
    name = str(column.type)
    if name.startswith("decimal"):
        return name.replace(" ", "")
    if name not in _TRINO_TYPES:
        raise ValueError(f"column {column.name}: no Trino type for {name}")
    return _TRINO_TYPES[name]


def select_expression(column: Column) -> str:
    """The lake value of ``column`` from its VARCHAR raw column; an empty field is NULL."""
    assert column.source is not None
    text = f"NULLIF({_quote(column.source.lower())}, '')"
    kind = "varchar"
    target = trino_type(column)
    for transform in column.transforms:
        if transform in (Transform.IDENTITY, Transform.PSEUDONYMISE):
            # The peer does not pseudonymise: identifiers go in clear.
            continue
        if transform is Transform.PARSE_DATE_ISO:
            text, kind = f"CAST({text} AS date)", "date"
        elif transform is Transform.PARSE_DATE_DDMMYYYY:
            text, kind = f"CAST(date_parse({text}, '%d%m%Y') AS date)", "date"
        elif transform is Transform.DECIMAL:
            text, kind = f"CAST(replace({text}, ',', '.') AS {target})", target
        else:
            raise ValueError(f"column {column.name}: the peer has no SQL for transform {transform}")
    if kind != target:
        text = f"CAST({text} AS {target})"
    return text


def create_lake_table(declared: TableSchema, table: str) -> str:
    """The lake table: declared columns, types, NOT NULL and partitioning.

    No ``sorted_by``: the declared sort order is metadata for the loader too (pyiceberg does not
    sort on append), so sorting here would make the peer do work the loader does not.
    """
    columns = ",\n  ".join(
        f"{_quote(c.name)} {trino_type(c)}{' NOT NULL' if c.required else ''}" for c in declared.lake_columns
    )
    partitions = []
    for part in declared.partition_by:
        if part.transform not in _PARTITION_TRANSFORMS:
            raise ValueError(f"{declared.full_name}: the peer has no partitioning for {part.transform}")
        partitions.append(part.column if part.transform == "identity" else f"{part.transform}({part.column})")
    partitioning = ", ".join(f"'{p}'" for p in partitions)
    return (f"CREATE TABLE {table} (\n  {columns}\n) WITH (format = 'PARQUET', format_version = 2, "
            f"partitioning = ARRAY[{partitioning}])")


def insert_select(declared: TableSchema, table: str, csv_table: str) -> str:
    names = ", ".join(_quote(c.name) for c in declared.lake_columns)
    expressions = ",\n  ".join(select_expression(c) for c in declared.lake_columns)
    return f"INSERT INTO {table} ({names})\nSELECT\n  {expressions}\nFROM {csv_table}"


def create_csv_table(csv_path: Path, declared: TableSchema, table: str, location: str) -> str:
    """An external Hive table over the CSV's folder: every column VARCHAR, in the file's header order."""
    source = declared.source
    if source is None or source.format is not SourceFormat.CSV or (source.encoding or "utf-8") != "utf-8":
        raise ValueError(f"{declared.full_name}: the peer reads UTF-8 CSV sources only ({source})")
    delimiter = source.delimiter or ","
    with csv_path.open(encoding="utf-8") as file:
        header = file.readline().rstrip("\r\n").split(delimiter)
    columns = ", ".join(f"{_quote(name.lower())} varchar" for name in header)
    return (f"CREATE TABLE {table} ({columns}) WITH (format = 'CSV', external_location = '{location}', "
            f"skip_header_line_count = 1, csv_separator = '{delimiter}')")


def measure(trino: BenchTrino, csv_path: Path, table_name: str = "snds.outpatient_claims") -> dict[str, float]:
    """Rows, seconds of the INSERT ... SELECT alone, and the JVM's peak RSS (MiB) during it."""
    namespace, name = table_name.split(".")
    declared = load_table_schema(schemas_dir() / namespace / f"{name}.yaml")
    suffix = uuid.uuid4().hex[:8]
    folder = f"csv_{suffix}"
    (trino.files / folder).mkdir()
    # The same file the other runners read, under local.location: a hard link, or a copy across devices.
    linked = trino.files / folder / csv_path.name
    try:
        os.link(csv_path, linked)
    except OSError:
        shutil.copyfile(csv_path, linked)
    csv_table = f"hive.{HIVE_SCHEMA}.{_quote(name + '_' + suffix)}"
    lake_schema = f"iceberg.{_quote('bench_peer_' + suffix)}"
    lake_table = f"{lake_schema}.{_quote(name)}"
    trino.execute(create_csv_table(csv_path, declared, csv_table, f"local:///{folder}"))
    trino.execute(f"CREATE SCHEMA {lake_schema}")
    try:
        trino.execute(create_lake_table(declared, lake_table))
        trino.reset_peak_rss()
        start = time.perf_counter()
        result = trino.execute(insert_select(declared, lake_table, csv_table))
        seconds = time.perf_counter() - start
        peak = trino.peak_rss_mib()
        if result.update_count is None:
            raise RuntimeError("the INSERT returned no update count")
        return {"rows": result.update_count, "seconds": seconds, "peak_rss_mib": peak}
    finally:
        # DROP TABLE removes an Iceberg table's files too; the external CSV table only loses its metadata.
        trino.execute(f"DROP TABLE IF EXISTS {lake_table}")
        trino.execute(f"DROP SCHEMA IF EXISTS {lake_schema}")
        trino.execute(f"DROP TABLE IF EXISTS {csv_table}")
        shutil.rmtree(trino.files / folder, ignore_errors=True)


if __name__ == "__main__":
    # A quick check on its own: python bench/trino_peer.py <outpatient_claims.csv>
    from santelake.config import load_settings

    with BenchTrino(Layout(load_settings())) as bench:
        print(f"bench Trino ready in {bench.start_seconds:.1f}s on {bench.url} (unpack {bench.unpack_seconds:.1f}s)",
              file=sys.stderr)
        print(measure(bench, Path(sys.argv[1])))
