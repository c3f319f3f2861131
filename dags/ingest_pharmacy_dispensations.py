"""Airflow DAG: loads landed pharmacy_dispensations extracts into snds.pharmacy_dispensations."""

from santelake.ingest.dag import ingest_dag

ingest_dag("pharmacy_dispensations")
