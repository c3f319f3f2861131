"""Airflow DAG: loads landed outpatient_claims extracts into snds.outpatient_claims."""

from santelake.ingest.dag import ingest_dag

ingest_dag("outpatient_claims")
