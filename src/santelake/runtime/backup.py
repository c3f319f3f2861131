"""Back up the local stack; restore a backup into a fresh state folder.

The same backup as a Helm release's (``santelake.deploy.backup``: ``ingest`` paused, its loads
waited for, databases dumped before the buckets are copied, a manifest of every file's SHA-256),
with what only the local stack keeps:

- the audit trail's database, and its anchors bucket, copied *before* the dumps (an anchor newer
  than the dumped trail would read, once restored, as a cut tail);
- the secrets folder, the key chain among them, sealed in ``secrets.enc`` under a passphrase
  the operator gives (``SANTELAKE_SECRET_BACKUP_PASSPHRASE`` or ``..._FILE``): AES-256-GCM,
  the key derived with scrypt. The rest of the backup holds pseudonymised tables and raw
  extracts; the key chain is what links pseudonyms back to NIRs, so it never lies in the
  backup in the clear, and the passphrase is kept apart from the backup's media
  (docs/operations.md).

A restore goes into a state folder with no data yet (a new machine, or a new ``--state-dir``):
the secrets first, then PostgreSQL and MinIO, the buckets and databases, then the rest of the
stack. The TLS certificates are new ones; nothing else is.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from santelake.audit.config import AUDIT_BUCKET
from santelake.audit.store import DATABASE as AUDIT_DATABASE
from santelake.deploy.backup import PG_RESTORE, IngestThroughAirflow, backup, read_manifest, restore
from santelake.digest import file_sha256
from santelake.errors import ConfigError, ServiceError
from santelake.files import write_private
from santelake.names import BUCKETS, DATABASES
from santelake.runtime.layout import Layout
from santelake.runtime.process import run_checked
from santelake.runtime.secrets import env_name, provided

SECRETS_FILE = "secrets.enc"
PASSPHRASE = "backup-passphrase"
MIN_PASSPHRASE = 16
# scrypt's cost: about 0.1 s and 32 MiB per derivation, once per backup or restore.
SCRYPT = {"n": 2 ** 15, "r": 8, "p": 1}


def passphrase() -> str:
    given = provided(PASSPHRASE)
    if given is None:
        raise ConfigError(f"a backup's secrets (the key chain among them) are sealed under a passphrase: give it "
                          f"in {env_name(PASSPHRASE)} or a file named by {env_name(PASSPHRASE)}_FILE")
    if len(given) < MIN_PASSPHRASE:
        raise ConfigError(f"the backup passphrase ({env_name(PASSPHRASE)}) has {len(given)} characters; "
                          f"use at least {MIN_PASSPHRASE}")
    return given


def _key(secret: str, salt: bytes, cost: dict[str, int]) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, n=cost["n"], r=cost["r"], p=cost["p"]).derive(secret.encode())


def seal(files: dict[str, bytes], secret: str) -> bytes:
    """``files`` (name -> content) encrypted under ``secret``; the header is authenticated too."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, nonce = os.urandom(16), os.urandom(12)
    header = {"format": 1, "cipher": "AES-256-GCM", "kdf": "scrypt", **SCRYPT,
              "salt": base64.b64encode(salt).decode(), "nonce": base64.b64encode(nonce).decode()}
    plain = json.dumps({name: base64.b64encode(value).decode() for name, value in sorted(files.items())}).encode()
    sealed = AESGCM(_key(secret, salt, SCRYPT)).encrypt(nonce, plain, json.dumps(header, sort_keys=True).encode())
    return json.dumps({**header, "ciphertext": base64.b64encode(sealed).decode()}, sort_keys=True).encode()


def unseal(blob: bytes, secret: str, origin: str) -> dict[str, bytes]:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        data = json.loads(blob)
        header = {k: v for k, v in data.items() if k != "ciphertext"}
        cost = {k: int(header[k]) for k in SCRYPT}
        salt, nonce = base64.b64decode(header["salt"]), base64.b64decode(header["nonce"])
        sealed = base64.b64decode(data["ciphertext"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{origin}: not a sealed secrets file ({type(exc).__name__})") from exc
    try:
        plain = AESGCM(_key(secret, salt, cost)).decrypt(nonce, sealed, json.dumps(header, sort_keys=True).encode())
    except InvalidTag:
        raise ConfigError(f"{origin}: the passphrase is not the backup's, or the file was altered; "
                          "nothing was restored") from None
    return {name: base64.b64decode(value) for name, value in json.loads(plain).items()}


class LocalSite(IngestThroughAirflow):
    """The local stack, as ``santelake.deploy.backup`` backs up and restores a site."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def describe(self) -> dict[str, Any]:
        return {"site": "local", "state_dir": str(self.layout.settings.state_dir)}

    def airflow(self, *args: str, timeout: float = 300) -> str:
        from santelake.runtime.services.airflow import Airflow

        airflow = Airflow(self.layout)
        return run_checked([airflow.airflow_bin, *args], f"airflow {' '.join(args[:2])}", env=airflow.process_env(),
                           timeout=timeout)

    def databases(self) -> dict[str, str]:
        # The trail's database keeps its owner and grants as dumped (its writer may only insert).
        return {database: role for role, database in DATABASES.items()} | {AUDIT_DATABASE: ""}

    def kept_on_restore(self) -> tuple[set[str], set[str]]:
        # A fresh state folder's receiver has not run yet: the backed-up trail is restored, anchors and all.
        return set(), set()

    def _client_env(self) -> dict[str, str]:
        from santelake.runtime.services.postgres import SUPERUSER

        s = self.layout.settings
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGHOST": s.hostname, "PGPORT": str(s.postgres_port),
                "PGUSER": SUPERUSER, "PGPASSWORD": self.layout.secrets.get("postgres-superuser-password"),
                "PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(self.layout.tls.ca_cert), "PGCONNECT_TIMEOUT": "10"}

    def dump(self, database: str, path: Path) -> None:
        from santelake.runtime.services.postgres import find_bin_dir

        run_checked([str(find_bin_dir() / "pg_dump"), "-Fc", "--file", str(path), "--dbname", database],
                    f"pg_dump {database}", env=self._client_env(), timeout=3600)

    def load(self, database: str, role: str, path: Path) -> None:
        from santelake.runtime.services.postgres import find_bin_dir

        command = [str(find_bin_dir() / "pg_restore"), *PG_RESTORE.split()[1:]]
        if role:
            command += ["--no-owner", "--no-acl", "--role", role]
        run_checked([*command, "--dbname", database, str(path)], f"pg_restore {database}", env=self._client_env(),
                    timeout=3600)

    def bucket_names(self) -> list[str]:
        return sorted({*BUCKETS, AUDIT_BUCKET})

    def copied_before_dumps(self) -> list[str]:
        return [AUDIT_BUCKET]

    def object_store(self) -> contextlib.AbstractContextManager[Any]:
        from santelake.runtime.services.minio import Minio

        return contextlib.nullcontext(Minio(self.layout).client())

    def stop(self, report: Callable[[str], None], timeout: float) -> None:
        """Nothing to stop: a restore starts from a fresh state folder, PostgreSQL and MinIO alone up."""
        from santelake.runtime import stack

        running = [s.name for s in stack.status(self.layout) if s.healthy and s.name not in ("postgres", "minio")]
        if running:
            raise ServiceError(f"{', '.join(running)} running: a local restore starts from a fresh state folder")

    def start(self, report: Callable[[str], None], timeout: float) -> None:
        from santelake.runtime import stack

        stack.up(self.layout, log=report)


def secrets_files(layout: Layout) -> dict[str, bytes]:
    folder = layout.secrets.directory
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()} if folder.is_dir() else {}


def back_up(layout: Layout, target: Path, report: Callable[[str], None] = print) -> dict[str, Any]:
    """Back up the running local stack into the new or empty directory ``target``."""
    secret = passphrase()  # before anything: a backup with no way to seal its key chain is refused

    def add_secrets(root: Path, manifest: dict[str, Any]) -> None:
        files = secrets_files(layout)
        path = root / SECRETS_FILE
        write_private(path, seal(files, secret))
        given = sorted(name for name in files if provided(name) is not None)
        manifest["secrets"] = {"file": SECRETS_FILE, "sha256": file_sha256(path), "bytes": path.stat().st_size,
                               "names": sorted(files), "given_by_environment": given}
        report(f"secrets: {len(files)} sealed in {SECRETS_FILE}")

    return backup(LocalSite(layout), target, report=report, extra=add_secrets)


def _has_data(layout: Layout) -> list[str]:
    from santelake.runtime.services.minio import Minio
    from santelake.runtime.services.postgres import Postgres

    found = []
    postgres_data = Postgres(layout).data_dir
    if (postgres_data / "PG_VERSION").exists():
        found.append(str(postgres_data))
    minio_dir = Minio(layout).directory
    if minio_dir.is_dir() and any(minio_dir.iterdir()):
        found.append(str(minio_dir))
    return found


def restore_fresh(layout: Layout, source: Path, report: Callable[[str], None] = print) -> None:
    """Restore the local backup in ``source`` into this layout's state folder, which holds no data yet."""
    from santelake.runtime import stack

    found = _has_data(layout)
    if found:
        raise ConfigError(f"{layout.settings.state_dir} holds data already ({', '.join(found)}); a local restore goes "
                          "into a fresh state folder: choose a new one with --state-dir, or move this one aside "
                          "after `santelake down`")
    manifest = read_manifest(source)  # every file checked before anything changes, the sealed secrets too
    entry = manifest.get("secrets")
    if manifest.get("site") != "local" or not entry:
        raise ConfigError(f"{source}: not a backup of a local stack (a Helm release's is restored with --namespace)")
    sealed = source / entry["file"]
    files = unseal(sealed.read_bytes(), passphrase(), str(sealed))
    for name, content in files.items():
        if "/" in name or name.startswith("."):
            raise ConfigError(f"{sealed}: holds a secret named {name!r}, not a file name")
        write_private(layout.secrets.path(name), content)
    report(f"secrets: {len(files)} restored")
    for name in entry.get("given_by_environment", []):
        if provided(name) is None:
            report(f"note: {name} was given through {env_name(name)} when backed up; give it again")
    stack.up(layout, log=report, only=("postgres", "minio"))
    restore(LocalSite(layout), source, report=report, manifest=manifest)
