"""MinIO: the S3 object store, built from source, TLS on, update checks off.

Root credentials are generated; ingestion and Trino each get an access key limited to the
buckets they need. Researchers get no storage credentials at all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from santelake.runtime.artifacts import build_minio, minio_binary
from santelake.runtime.layout import LANDING_BUCKET, WAREHOUSE_BUCKET
from santelake.runtime.process import ProcessSpec
from santelake.runtime.secrets import write_private
from santelake.runtime.services.base import Health, Service

ROOT_USER = "santelake-root"
# service account -> buckets it may read and write
ACCOUNTS = {
    "ingest": (LANDING_BUCKET, WAREHOUSE_BUCKET),
    "trino": (WAREHOUSE_BUCKET,),
}
BUCKETS = (WAREHOUSE_BUCKET, LANDING_BUCKET)


def bucket_policy(buckets: tuple[str, ...]) -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket",
                                           "s3:ListBucketMultipartUploads"],
             "Resource": [f"arn:aws:s3:::{b}" for b in buckets]},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                           "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
             "Resource": [f"arn:aws:s3:::{b}/*" for b in buckets]},
        ],
    }


class Minio(Service):
    name = "minio"
    port_keys = ("minio",)

    @property
    def directory(self) -> Path:
        return self.layout.service_dir("minio")

    def credentials(self, account: str) -> tuple[str, str]:
        """Access and secret key of ``account`` (one of ACCOUNTS)."""
        if account not in ACCOUNTS:
            raise KeyError(f"no storage account {account!r}; known: {sorted(ACCOUNTS)}")
        return f"santelake-{account}", self.layout.secrets.get(f"minio-{account}-secret-key")

    def prepare(self) -> None:
        build_minio(self.layout.settings.cache_dir)
        certs = self.directory / "certs"
        (certs / "CAs").mkdir(parents=True, exist_ok=True)
        tls = self.layout.tls
        (certs / "public.crt").write_bytes(tls.server_cert.read_bytes())
        write_private(certs / "private.key", tls.server_key.read_bytes())
        (certs / "CAs" / "santelake-ca.crt").write_bytes(tls.ca_cert.read_bytes())
        (self.directory / "data").mkdir(parents=True, exist_ok=True)

    def processes(self) -> list[ProcessSpec]:
        s = self.layout.settings
        binary = minio_binary(s.cache_dir)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.directory),
            "MINIO_ROOT_USER": ROOT_USER,
            "MINIO_ROOT_PASSWORD": self.layout.secrets.get("minio-root-password"),
            "MINIO_UPDATE": "off",
            "MINIO_BROWSER": "off",
            "MINIO_CALLHOME_ENABLE": "off",
        }
        command = [
            str(binary), "server", "--quiet",
            "--address", f"{s.bind_host}:{s.minio_port}",
            "--console-address", f"{s.bind_host}:{s.minio_port + 2}",
            "--certs-dir", str(self.directory / "certs"),
            str(self.directory / "data"),
        ]
        return [self.spec(command, env)]

    def health(self) -> Health:
        status, body = self.https_get(f"{self.url}/minio/health/live")
        return Health(status == 200, f"HTTP {status}" if status else body.decode(errors="replace"))

    def client(self, account: str | None = None) -> Any:
        """An S3 client verifying TLS with the platform CA; root when ``account`` is None."""
        import urllib3
        from minio import Minio as MinioClient

        access, secret = (ROOT_USER, self.layout.secrets.get("minio-root-password")) if account is None \
            else self.credentials(account)
        http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(self.layout.tls.ca_cert))
        s = self.layout.settings
        return MinioClient(f"{s.hostname}:{s.minio_port}", access_key=access, secret_key=secret, secure=True,
                           http_client=http, region="us-east-1")

    def after_start(self) -> None:
        import urllib3
        from minio.credentials.providers import StaticProvider
        from minio.error import MinioAdminException
        from minio.minioadmin import MinioAdmin

        client = self.client()
        for bucket in BUCKETS:
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)
        s = self.layout.settings
        http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(self.layout.tls.ca_cert))
        admin = MinioAdmin(endpoint=f"{s.hostname}:{s.minio_port}",
                           credentials=StaticProvider(ROOT_USER, self.layout.secrets.get("minio-root-password")),
                           secure=True, http_client=http, region="us-east-1")
        for account, buckets in ACCOUNTS.items():
            access, secret = self.credentials(account)
            policy_name = f"santelake-{account}"
            admin.policy_add(policy_name, policy=bucket_policy(buckets))
            admin.user_add(access, secret)
            try:
                admin.attach_policy([policy_name], user=access)
            except MinioAdminException as exc:
                # Attaching twice is refused, not ignored; an attached policy is what we want.
                if "XMinioAdminPolicyChangeAlreadyApplied" not in str(exc):
                    raise
