"""Airflow DAG: loads landed gp_consultations extracts into snds.gp_consultations."""

from santelake.ingest.dag import ingest_dag

ingest_dag("gp_consultations")
