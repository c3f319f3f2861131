"""A service a load needs fails: the load stops with an error naming the service, no SQL and no
traceback of the driver, publishes nothing and leaves the extract waiting (issue 17, item 1).

A refused connection (a port nothing listens on) stands in for the dead service: killing the
shared stack's PostgreSQL or MinIO would take the local Airflow and the other tests down with
it. The extract lands in a bucket of the test's own, so the local scheduler never sees it.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from santelake.ingest.errors import PlatformFaultError
from santelake.ingest.landing import INCOMING, Landing, load_waiting
from santelake.lake.storage import s3_client
from santelake.runtime.layout import Layout
from santelake.runtime.services.minio import ROOT_USER
from santelake.settings import PlatformSettings

pytestmark = pytest.mark.faults


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture()
def own_landing(platform: PlatformSettings, layout: Layout,
                tmp_path: Path) -> Iterator[tuple[PlatformSettings, Landing]]:
    """Settings whose landing bucket is a new one of this test's (root's keys), and that bucket."""
    password = layout.secrets.get("minio-root-password")
    (tmp_path / "access").write_text(ROOT_USER)
    (tmp_path / "secret").write_text(password)
    (tmp_path / "secret").chmod(0o600)
    client = s3_client(platform.s3_host, ROOT_USER, password, platform.ca_file)
    bucket = f"faults-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)
    settings = platform.model_copy(update={"landing_bucket": bucket, "s3_access_key_file": tmp_path / "access",
                                           "s3_secret_key_file": tmp_path / "secret"})
    yield settings, Landing(client, bucket)
    for item in client.list_objects(bucket, recursive=True):
        client.remove_object(bucket, item.object_name)
    client.remove_bucket(bucket)


def test_a_dead_catalog_database_stops_the_load_clearly_and_keeps_the_extract(
        own_landing: tuple[PlatformSettings, Landing], extracts: Path) -> None:
    settings, landing = own_landing
    key = landing.land("beneficiaries", extracts / "beneficiaries.csv")
    port = _closed_port()
    with pytest.raises(PlatformFaultError) as caught:
        load_waiting(settings.model_copy(update={"catalog_port": port}))
    message = str(caught.value)
    assert f"the catalog's database (PostgreSQL at {settings.catalog_host}:{port}) failed (OperationalError" \
        in message, message
    assert "[SQL" not in message and "SELECT" not in message.upper(), "no statement dump"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "stays waiting" in message
    assert {o.key for o in landing.objects(INCOMING)} == {key}


def test_a_dead_object_store_stops_the_load_clearly(own_landing: tuple[PlatformSettings, Landing],
                                                    extracts: Path) -> None:
    settings, landing = own_landing
    key = landing.land("beneficiaries", extracts / "beneficiaries.csv")
    endpoint = f"https://localhost:{_closed_port()}"
    with pytest.raises(PlatformFaultError) as caught:
        load_waiting(settings.model_copy(update={"s3_endpoint": endpoint}))
    assert f"the object store ({endpoint}) failed" in str(caught.value), str(caught.value)
    assert {o.key for o in landing.objects(INCOMING)} == {key}
