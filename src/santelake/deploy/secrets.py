"""The Secrets a chart install needs, made with generated values where none exists yet.

The chart creates no Secret and has no default password: the operator names each Secret in
the values (``secrets.*``, ``tls.existingSecret``, ...). ``santelake secrets`` creates those
that do not exist in the namespace yet, each with generated values, through ``kubectl``, and
prints only their names; an existing Secret is never changed. The platform certificate is
made by the same code as the local stack's (``runtime.tls``), for every Service of the
release, by its short name and its cluster names.
"""

from __future__ import annotations

import secrets as random
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from santelake.errors import ServiceError
from santelake.render import airflow, trino


def _token() -> str:
    return random.token_urlsafe(32)


def _hex() -> str:
    return random.token_hex(32)


def _fixed(value: str) -> Callable[[], str]:
    return lambda: value


# Values key naming a Secret -> its keys and how each is made. Passwords that go into a URL
# (Airflow's database) are URL-safe.
GENERATED: dict[str, dict[str, Callable[[], str]]] = {
    "secrets.trinoSharedSecret": {"shared-secret": _hex},
    "secrets.catalogDatabase": {"password": _token},
    "secrets.keycloakDatabase": {"password": _token},
    "secrets.airflowDatabase": {"password": _token},
    "secrets.keycloakAdmin": {"username": _fixed("santelake-admin"), "password": _token},
    "secrets.trinoStorage": {"access-key": _fixed("santelake-trino"), "secret-key": _token},
    "secrets.ingestStorage": {"access-key": _fixed("santelake-ingest"), "secret-key": _token},
    "secrets.airflow": {"fernet-key": airflow.new_secret, "jwt-secret": airflow.new_secret,
                        "api-secret-key": airflow.new_secret},
    "secrets.airflowClient": {airflow.CLIENT_SECRET_KEY: _token},
    "secrets.trinoOAuth2": {"client-secret": _token, "token-key": trino.new_token_key},
    "secrets.pseudonymisationKey": {"key": _hex},
    "secrets.audit": {"receiver-token": _token, "writer-password": _token, "reader-password": _token,
                      "keycloak-client-secret": _token},
    "secrets.auditStorage": {"access-key": _fixed("santelake-audit"), "secret-key": _token},
    "postgresql.bundledServer.superuserSecret": {"password": _token},
    "objectStorage.minio.rootSecret": {"root-user": _fixed("santelake-root"), "root-password": _token},
    "helmTest.serviceAccountClient.existingSecret": {"client-secret": _hex},
}
TLS_VALUE = "tls.existingSecret"
# Secrets only the site can make (its own certificates, SeaweedFS's identities, an external database's
# administrator): never generated.
SITE_PROVIDED = ("trino.tls.existingSecret", "keycloak.tls.existingSecret", "objectStorage.external.caSecret",
                 "objectStorage.seaweedfs.s3ConfigSecret", "audit.databaseAdmin.existingSecret")


@dataclass(frozen=True)
class Wanted:
    values_key: str
    name: str
    keys: tuple[str, ...]


def value_at(values: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted key (``secrets.airflow``), None where a part is missing."""
    node: Any = values
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def wanted(values: Mapping[str, Any]) -> list[Wanted]:
    """Every Secret these values make the chart read, by name, with its keys (TLS first)."""
    found = []
    if value_at(values, TLS_VALUE):
        found.append(Wanted(TLS_VALUE, value_at(values, TLS_VALUE), ("tls.crt", "tls.key", "ca.crt")))
    used = {
        "postgresql.bundledServer.superuserSecret": bool(value_at(values, "postgresql.bundled")),
        "objectStorage.minio.rootSecret": value_at(values, "objectStorage.type") == "minio",
        "helmTest.serviceAccountClient.existingSecret": bool(value_at(values, "helmTest.serviceAccountClient.enabled")),
    }
    for key, parts in GENERATED.items():
        name = value_at(values, key)
        if name and used.get(key, True):
            found.append(Wanted(key, name, tuple(parts)))
    return found


def generated_data(item: Wanted) -> dict[str, str]:
    return {key: make() for key, make in GENERATED[item.values_key].items()}


def tls_data(namespace: str, services: list[str], work: Path) -> dict[str, str]:
    """A CA and a certificate naming each Service (short, namespaced and cluster names)."""
    from santelake.runtime.tls import ensure_certificates

    names = [f"{service}{suffix}" for service in services
             for suffix in ("", f".{namespace}", f".{namespace}.svc", f".{namespace}.svc.cluster.local")]
    files = ensure_certificates(work, [*names, "localhost"], ["127.0.0.1"])
    return {"tls.crt": files.server_cert.read_text(), "tls.key": files.server_key.read_text(),
            "ca.crt": files.ca_cert.read_text()}


def _kubectl(kubectl: str, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([kubectl, "-n", namespace, *args], capture_output=True, text=True, check=False,
                          timeout=60)


def create_missing(values: Mapping[str, Any], namespace: str, services: list[str], kubectl: str = "kubectl",
                   log: Callable[[str], None] = print) -> list[str]:
    """Create each wanted Secret that does not exist; returns the names created. Values never printed."""
    absent = [f"{value_at(values, key)} ({key})" for key in SITE_PROVIDED if value_at(values, key)
              and _kubectl(kubectl, namespace, "get", "secret", value_at(values, key)).returncode != 0]
    if absent:
        raise ServiceError(f"these Secrets are the site's own and must exist in {namespace} first: {', '.join(absent)}")
    created = []
    with tempfile.TemporaryDirectory() as scratch:
        for item in wanted(values):
            if _kubectl(kubectl, namespace, "get", "secret", item.name).returncode == 0:
                log(f"{item.name}: exists, left as it is")
                continue
            data = tls_data(namespace, services, Path(scratch) / "tls") if item.values_key == TLS_VALUE \
                else generated_data(item)
            folder = Path(scratch) / item.name
            folder.mkdir()
            args = ["create", "secret", "generic", item.name]
            for key, value in data.items():
                (folder / key).write_text(value)
                args.append(f"--from-file={key}={folder / key}")
            result = _kubectl(kubectl, namespace, *args)
            if result.returncode != 0:
                raise ServiceError(f"creating Secret {item.name} in {namespace}: {result.stderr.strip()}")
            created.append(item.name)
            log(f"{item.name}: created ({', '.join(data)})")
    return created
