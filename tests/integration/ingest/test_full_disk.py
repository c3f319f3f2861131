"""The object store's disk fills during a load (issue 17, item 3): the load fails naming the cause,
nothing partial is published, and once space is freed a retry publishes every row, once.

The disk is real and really fills: a MinIO of this test's own (the stack's binary and
certificate) serves a 64 MiB tmpfs, and the lake's catalog is a PostgreSQL database of this
test's own on the stack's server, so the installation's lake is never touched. Needs root
(the tmpfs mount), as CI has.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from santelake.errors import SantelakeError
from santelake.ingest.errors import PlatformFaultError
from santelake.ingest.landing import INCOMING, Landing, load_waiting
from santelake.ingest.load import SOURCE_HASH
from santelake.lake.catalog import open_catalog
from santelake.lake.storage import s3_client
from santelake.runtime.artifacts import minio_binary
from santelake.runtime.layout import Layout
from santelake.runtime.services.postgres import Postgres
from santelake.settings import PlatformSettings
from santelake.synth import synthesize

DISK_MIB = 64
USER = "fulldisk"

pytestmark = [pytest.mark.faults,
              pytest.mark.skipif(os.geteuid() != 0, reason="mounting the small disk (tmpfs) needs root")]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture()
def small_store(layout: Layout, platform: PlatformSettings, tmp_path: Path) -> Iterator[tuple[PlatformSettings, Any]]:
    """Settings whose object store is a MinIO on a 64 MiB disk and whose catalog is a database of its own."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MIB}m", "tmpfs", str(disk)], check=True)
    password = uuid.uuid4().hex
    port = _free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "MINIO_ROOT_USER": USER,
           "MINIO_ROOT_PASSWORD": password, "MINIO_UPDATE": "off", "MINIO_BROWSER": "off",
           "MINIO_CALLHOME_ENABLE": "off"}
    server = subprocess.Popen([str(minio_binary(layout.settings.cache_dir)), "server", "--quiet",
                               "--address", f"127.0.0.1:{port}", "--console-address", f"127.0.0.1:{_free_port()}",
                               "--certs-dir", str(layout.service_dir("minio") / "certs"), str(disk)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    database = f"santelake_fulldisk_{uuid.uuid4().hex[:8]}"
    postgres = Postgres(layout)
    admin = postgres.connect()
    admin.autocommit = True
    try:
        client = s3_client(f"{layout.settings.hostname}:{port}", USER, password, layout.tls.ca_cert)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.list_buckets()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        for bucket in ("warehouse", "landing"):
            client.make_bucket(bucket)
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{database}" OWNER "{platform.catalog_user}"')
        (tmp_path / "access").write_text(USER)
        (tmp_path / "secret").write_text(password)
        (tmp_path / "secret").chmod(0o600)
        settings = platform.model_copy(update={
            "s3_endpoint": f"https://{layout.settings.hostname}:{port}", "s3_access_key_file": tmp_path / "access",
            "s3_secret_key_file": tmp_path / "secret", "warehouse_bucket": "warehouse", "landing_bucket": "landing",
            "catalog_database": database, "work_dir": tmp_path / "work"})
        yield settings, client
    finally:
        server.kill()
        server.wait(timeout=30)
        subprocess.run(["umount", str(disk)], check=False)
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


def _fill(client: Any) -> int:
    """Write 1 MiB filler objects until the store refuses one (the disk is full); how many it took."""
    import io

    from minio.error import S3Error

    for index in range(DISK_MIB * 2):
        try:
            client.put_object("landing", f"filler/{index}", io.BytesIO(b"\0" * (1 << 20)), 1 << 20)
        except S3Error:
            return index
    raise AssertionError("the disk never filled")


def test_a_full_disk_stops_the_load_publishes_nothing_and_a_retry_after_freeing_space_loads_once(
        small_store: tuple[PlatformSettings, Any], tmp_path: Path) -> None:
    settings, client = small_store
    report = synthesize(tmp_path / "extracts", scale=20_000, seed=17)
    files = {item.table: item for item in report.files}
    landing = Landing(client, "landing")
    landing.land("beneficiaries", Path(files["beneficiaries"].path))
    assert [o.status for o in load_waiting(settings)] == ["published"]
    claims = Path(files["outpatient_claims"].path)
    key = landing.land("outpatient_claims", claims)
    assert _fill(client) > 0

    with pytest.raises(SantelakeError) as caught:
        load_waiting(settings)

    message = str(caught.value)
    print(f"\nthe load on a full disk: {message}")
    assert isinstance(caught.value, PlatformFaultError), message
    assert "is full" in message, message
    assert {o.key for o in landing.objects(INCOMING)} == {key}, "the extract stays waiting"
    catalog = open_catalog(settings)
    if catalog.table_exists(("snds", "outpatient_claims")):
        table = catalog.load_table(("snds", "outpatient_claims"))
        assert table.current_snapshot() is None, "nothing of the file is published"

    for item in client.list_objects("landing", prefix="filler/", recursive=True):
        client.remove_object("landing", item.object_name)
    outcomes = load_waiting(settings)

    assert [o.status for o in outcomes] == ["published"], outcomes
    result = outcomes[0].result
    assert result is not None and result.rows_read == files["outpatient_claims"].rows
    table = catalog.load_table(("snds", "outpatient_claims"))
    published = [s for s in table.metadata.snapshots if s.summary and SOURCE_HASH in s.summary.additional_properties]
    assert len(published) == 1
    assert table.scan().to_arrow().num_rows == result.rows_published
