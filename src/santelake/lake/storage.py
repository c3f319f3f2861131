"""S3 clients of the object store, TLS verified with the platform CA and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from santelake.settings import PlatformSettings

# Every client call gives up after these (seconds): a stalled store fails a task, not hangs it.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 300.0


def s3_client(endpoint: str, access_key: str, secret_key: str, ca_file: Path | str) -> Any:
    """An S3 client of ``endpoint`` (host:port) verifying TLS with ``ca_file`` only."""
    import urllib3
    from minio import Minio as MinioClient

    http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(ca_file),
                               timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
                               retries=urllib3.Retry(total=3, backoff_factor=0.5,
                                                     status_forcelist=(500, 502, 503, 504)))
    return MinioClient(endpoint, access_key=access_key, secret_key=secret_key, secure=True, http_client=http,
                       region="us-east-1")


def ingest_client(settings: PlatformSettings) -> Any:
    """The ingest account's client of the installation's object store."""
    return s3_client(settings.s3_host, settings.secret("s3_access_key_file"), settings.secret("s3_secret_key_file"),
                     settings.ca_file)
