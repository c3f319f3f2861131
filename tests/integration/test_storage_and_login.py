"""Storage accounts reach only their buckets; terminal users can start a device login."""

from __future__ import annotations

import pytest
import requests
from minio.error import S3Error

from santelake.names import LANDING_BUCKET, WAREHOUSE_BUCKET
from santelake.render.keycloak import CLI_CLIENT
from santelake.runtime.layout import Layout
from santelake.runtime.services.minio import Minio


def test_each_storage_account_reaches_only_its_buckets(layout: Layout) -> None:
    minio = Minio(layout)
    ingest, trino = minio.client("ingest"), minio.client("trino")
    assert ingest.bucket_exists(LANDING_BUCKET) and ingest.bucket_exists(WAREHOUSE_BUCKET)
    next(iter(trino.list_objects(WAREHOUSE_BUCKET, recursive=True)))
    with pytest.raises(S3Error, match="AccessDenied"):
        list(trino.list_objects(LANDING_BUCKET))
    with pytest.raises(S3Error, match="AccessDenied"):
        trino.make_bucket("not-allowed")
    # Listing buckets is not refused; MinIO shows each account only the buckets it may use.
    assert {b.name for b in trino.list_buckets()} == {WAREHOUSE_BUCKET}
    assert {b.name for b in ingest.list_buckets()} == {WAREHOUSE_BUCKET, LANDING_BUCKET}


def test_the_cli_client_offers_the_device_login(layout: Layout) -> None:
    response = requests.post(f"{layout.keycloak_issuer}/protocol/openid-connect/auth/device",
                             data={"client_id": CLI_CLIENT, "scope": "openid"},
                             verify=str(layout.tls.ca_cert), timeout=10)
    assert response.status_code == 200, response.text
    grant = response.json()
    assert grant["verification_uri"].startswith(layout.keycloak_issuer)
    assert grant["user_code"] and grant["device_code"]
