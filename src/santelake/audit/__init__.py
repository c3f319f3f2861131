"""The audit trail: every query, login, policy change, load and erasure, hash-chained."""
