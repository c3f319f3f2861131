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
from typing import Any

from santelake.lake.fileio import S3_CA_FILE
from santelake.runtime.layout import CATALOG_DATABASE, CATALOG_NAME, CATALOG_ROLE, WAREHOUSE_BUCKET, Layout
from santelake.runtime.services.minio import Minio
from santelake.runtime.services.postgres import role_password_key


def catalog_properties(layout: Layout, account: str = "ingest") -> dict[str, str]:
    access, secret = Minio(layout).credentials(account)
    password = layout.secrets.get(role_password_key(CATALOG_ROLE))
    return {
        "uri": layout.postgres_sqlalchemy_url(CATALOG_ROLE, password, CATALOG_DATABASE),
        "warehouse": f"s3://{WAREHOUSE_BUCKET}",
        "py-io-impl": "santelake.lake.fileio.VerifiedPyArrowFileIO",
        "s3.endpoint": layout.url("minio"),
        "s3.access-key-id": access,
        "s3.secret-access-key": secret,
        "s3.region": "us-east-1",
        S3_CA_FILE: str(layout.tls.ca_cert),
    }


def open_sql_catalog(properties: Mapping[str, str]) -> Any:
    """The SqlCatalog named ``santelake`` with these properties, creating its tables on first use."""
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(CATALOG_NAME, **properties)


def open_catalog(layout: Layout, account: str = "ingest") -> Any:
    """The local installation's SqlCatalog, creating its tables on first use."""
    return open_sql_catalog(catalog_properties(layout, account))
