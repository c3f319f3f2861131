"""The platform's names, the same in every installation: buckets, catalog, realm, databases.

The bottom layer: the runtime, the chart's generators and the code that runs in pods all
take these names from here, and this module imports nothing of santelake.
"""

from __future__ import annotations

WAREHOUSE_BUCKET = "santelake-warehouse"
LANDING_BUCKET = "santelake-landing"
BUCKETS = (WAREHOUSE_BUCKET, LANDING_BUCKET)
CATALOG_NAME = "santelake"
CATALOG_DATABASE = "santelake_catalog"
CATALOG_ROLE = "iceberg_catalog"
REALM = "santelake"
TRINO_AUDIENCE = "trino"
# Keycloak's client that Airflow's API server logs operators in with, and asks for authorisation.
AIRFLOW_CLIENT = "airflow"
# PostgreSQL databases, by the role that owns each (the local runtime's and the chart's).
DATABASES = {CATALOG_ROLE: CATALOG_DATABASE, "keycloak": "keycloak", "airflow": "airflow"}
# The namespace the source tables live in.
SOURCE_NAMESPACE = "snds"
