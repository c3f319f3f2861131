"""The one Iceberg catalog: pyiceberg's SqlCatalog on PostgreSQL, the same Trino reads.

Both use the catalog name ``santelake`` (Trino's ``iceberg.jdbc-catalog.catalog-name``) and
the tables pyiceberg creates (``iceberg_tables`` with its ``iceberg_type`` column and
``iceberg_namespace_properties``), which Trino's default schema version V1 expects. Trino never
creates them itself, so they must exist before its first query: ``santelake up`` opens the
catalog before starting Trino, and the Helm chart's bootstrap Job (``santelake bootstrap``)
opens it before ``helm install`` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from santelake.lake.fileio import S3_CA_FILE
from santelake.names import CATALOG_NAME
from santelake.settings import PlatformSettings, postgres_sqlalchemy_url


def catalog_properties(settings: PlatformSettings) -> dict[str, str]:
    """The SqlCatalog's properties: PostgreSQL and the object store, both verified with the platform CA."""
    s = settings
    uri = postgres_sqlalchemy_url(s.catalog_host, s.catalog_port, s.catalog_user, s.secret("catalog_password_file"),
                                  s.catalog_database, s.ca_file)
    return lake_properties(uri, s.warehouse_bucket, s.s3_endpoint, s.secret("s3_access_key_file"),
                           s.secret("s3_secret_key_file"), s.ca_file)


def lake_properties(uri: str, warehouse_bucket: str, s3_endpoint: str, access_key: str, secret_key: str,
                    ca_file: Path | str) -> dict[str, str]:
    """The SqlCatalog's properties from their parts (``santelake bootstrap`` has no full settings)."""
    return {
        "uri": uri,
        "warehouse": f"s3://{warehouse_bucket}",
        "py-io-impl": "santelake.lake.fileio.VerifiedPyArrowFileIO",
        "s3.endpoint": s3_endpoint,
        "s3.access-key-id": access_key,
        "s3.secret-access-key": secret_key,
        "s3.region": "us-east-1",
        S3_CA_FILE: str(ca_file),
        # A pooled connection is checked before use: after PostgreSQL restarts, a long-lived
        # catalog (a CLI run, a test session) gets a fresh connection instead of "server closed
        # the connection unexpectedly" (tests/integration/test_catalog_restart.py).
        "pool_pre_ping": "true",
    }


def open_sql_catalog(properties: Mapping[str, str]) -> Any:
    """The SqlCatalog named ``santelake`` with these properties, creating its tables on first use."""
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(CATALOG_NAME, **properties)


def open_catalog(settings: PlatformSettings) -> Any:
    """The installation's SqlCatalog (as the ingest account), creating its tables on first use."""
    return open_sql_catalog(catalog_properties(settings))
