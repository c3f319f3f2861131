"""Service configuration generators shared by the local runtime and the Helm chart.

Each generator takes plain parameters (addresses, paths, names) and returns file contents;
secrets appear only as references resolved at run time (``${ENV:...}`` for Trino), never
as values.
"""
