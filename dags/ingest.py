"""Airflow DAG: loads the extracts that land in the landing bucket into the lake."""

from santelake.ingest.dag import ingest_dag

ingest_dag()
