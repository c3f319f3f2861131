"""MinIO: the S3 object store, built from source, TLS on, update checks off.

Root credentials are generated; ingestion and Trino each get an access key limited to the
buckets they need. Researchers get no storage credentials at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from santelake.audit.config import AUDIT_BUCKET, RETENTION_DAYS
from santelake.files import write_private
from santelake.lake.storage import s3_client
from santelake.names import BUCKETS, LANDING_BUCKET, WAREHOUSE_BUCKET
from santelake.runtime.artifacts import build_minio, minio_binary
from santelake.runtime.process import ProcessSpec
from santelake.runtime.services.base import Health, Service

ROOT_USER = "santelake-root"


def account_buckets(warehouse: str, landing: str) -> dict[str, tuple[str, ...]]:
    """Service account -> buckets it may read and write."""
    return {"ingest": (landing, warehouse), "trino": (warehouse,)}


ACCOUNTS = account_buckets(WAREHOUSE_BUCKET, LANDING_BUCKET)
# The audit receiver's account: it writes anchors of the trail's head and reads them back, and may
# delete nothing (santelake.audit.anchors). The local stack and the chart's bootstrap make it alike.
AUDIT_ACCOUNT = "audit"
LOCAL_ACCOUNTS = ACCOUNTS | {AUDIT_ACCOUNT: (AUDIT_BUCKET,)}


def audit_account(access_key: str, secret_key: str) -> Account:
    return Account(AUDIT_ACCOUNT, access_key, secret_key, (AUDIT_BUCKET,), write_once_policy(AUDIT_BUCKET))


def ensure_audit_bucket(client: Any) -> None:
    """The anchors' bucket, with object lock and a default retention in compliance mode: an anchor, once
    written, cannot be deleted or overwritten while its retention runs, not even by root."""
    from minio.commonconfig import COMPLIANCE
    from minio.objectlockconfig import DAYS, ObjectLockConfig

    if not client.bucket_exists(AUDIT_BUCKET):
        client.make_bucket(AUDIT_BUCKET, object_lock=True)
    client.set_object_lock_config(AUDIT_BUCKET, ObjectLockConfig(COMPLIANCE, RETENTION_DAYS, DAYS))


def write_once_policy(bucket: str) -> dict[str, object]:
    """Read, list and write ``bucket``; never delete or overwrite a locked version."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
             "Resource": [f"arn:aws:s3:::{bucket}"]},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": [f"arn:aws:s3:::{bucket}/*"]},
        ],
    }


def bucket_policy(buckets: tuple[str, ...]) -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            # Versions: an erasure deletes a person's older object versions when a bucket keeps them.
            {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket",
                                           "s3:ListBucketMultipartUploads", "s3:GetBucketVersioning",
                                           "s3:ListBucketVersions"],
             "Resource": [f"arn:aws:s3:::{b}" for b in buckets]},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                           "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
                                           "s3:GetObjectVersion", "s3:DeleteObjectVersion"],
             "Resource": [f"arn:aws:s3:::{b}/*" for b in buckets]},
        ],
    }


def account_secret(account: str, part: str) -> str:
    """The secret holding ``part`` (``access-key`` or ``secret-key``) of a storage account."""
    return f"minio-{account}-{part}"


@dataclass(frozen=True)
class Account:
    """A limited storage account: its keys and the buckets its policy grants."""

    name: str
    access_key: str
    secret_key: str
    buckets: tuple[str, ...]
    # The policy to attach, when not read-write-delete on ``buckets``.
    policy: dict[str, object] | None = None


def admin_client(endpoint: str, root_user: str, root_password: str, ca_file: Path | str) -> Any:
    """MinIO's admin API as root, verifying TLS with ``ca_file`` only."""
    import urllib3
    from minio.credentials.providers import StaticProvider
    from minio.minioadmin import MinioAdmin

    http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(ca_file))
    return MinioAdmin(endpoint=endpoint, credentials=StaticProvider(root_user, root_password), secure=True,
                      http_client=http, region="us-east-1")


def provision(client: Any, admin: Any, buckets: Iterable[str], accounts: Iterable[Account]) -> None:
    """Create the buckets and each account with its bucket policy; running it again changes nothing."""
    from minio.error import MinioAdminException

    for bucket in buckets:
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
    for account in accounts:
        policy_name = f"santelake-{account.name}"
        admin.policy_add(policy_name, policy=account.policy or bucket_policy(account.buckets))
        admin.user_add(account.access_key, account.secret_key)
        try:
            admin.attach_policy([policy_name], user=account.access_key)
        except MinioAdminException as exc:
            # Attaching twice is refused, not ignored; an attached policy is what we want.
            if "XMinioAdminPolicyChangeAlreadyApplied" not in str(exc):
                raise


class Minio(Service):
    name = "minio"
    port_keys = ("minio",)

    @property
    def directory(self) -> Path:
        return self.layout.service_dir("minio")

    def credential_files(self, account: str) -> tuple[Path, Path]:
        """The files holding the access and secret key of ``account`` (one of ACCOUNTS), made on first use."""
        if account not in LOCAL_ACCOUNTS:
            raise KeyError(f"no storage account {account!r}; known: {sorted(LOCAL_ACCOUNTS)}")
        store = self.layout.secrets
        return (store.file(account_secret(account, "access-key"), generate=lambda: f"santelake-{account}"),
                store.file(account_secret(account, "secret-key")))

    def credentials(self, account: str) -> tuple[str, str]:
        """Access and secret key of ``account`` (one of LOCAL_ACCOUNTS)."""
        access, secret = self.credential_files(account)
        return access.read_text(encoding="utf-8").strip(), secret.read_text(encoding="utf-8").strip()

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
        access, secret = (ROOT_USER, self.layout.secrets.get("minio-root-password")) if account is None \
            else self.credentials(account)
        s = self.layout.settings
        return s3_client(f"{s.hostname}:{s.minio_port}", access, secret, self.layout.tls.ca_cert)

    def after_start(self) -> None:
        s = self.layout.settings
        admin = admin_client(f"{s.hostname}:{s.minio_port}", ROOT_USER,
                             self.layout.secrets.get("minio-root-password"), self.layout.tls.ca_cert)
        accounts = [Account(name, *self.credentials(name), buckets) for name, buckets in ACCOUNTS.items()]
        accounts.append(audit_account(*self.credentials(AUDIT_ACCOUNT)))
        client = self.client()
        ensure_audit_bucket(client)
        provision(client, admin, BUCKETS, accounts)
