"""Ingestion: read a landed source file, check it, pseudonymise it, publish it exactly once."""
