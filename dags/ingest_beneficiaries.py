"""Airflow DAG: loads landed beneficiaries extracts into snds.beneficiaries."""

from santelake.ingest.dag import ingest_dag

ingest_dag("beneficiaries")
