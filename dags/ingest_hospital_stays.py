"""Airflow DAG: loads landed hospital_stays extracts into snds.hospital_stays."""

from santelake.ingest.dag import ingest_dag

ingest_dag("hospital_stays")
