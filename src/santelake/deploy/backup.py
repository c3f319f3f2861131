"""Back up a Helm release of santelake, and restore the backup into a release (a fresh one).

For the chart's bundled PostgreSQL and MinIO, through ``kubectl`` only (exec, port-forward,
scale), as docs/operations.md describes:

- **Backup**: pause the ``ingest`` DAG and wait for its running loads to end (the warehouse
  stops changing; extracts landing meanwhile wait in ``incoming/``); dump the three databases
  (``pg_dump -Fc`` in the PostgreSQL pod); copy every object of the warehouse and landing
  buckets, with its user metadata; write ``manifest.json`` with each file's SHA-256; unpause.
  The catalog dump comes before the bucket copy, so every metadata file the dump points at
  is in the copy (nothing expires snapshots meanwhile: santelake never does on its own).
- **Restore**: check every file of the backup against the manifest first; stop Airflow, Trino
  and Keycloak (their replica counts kept in an annotation, so a rerun after a failure still
  knows them); make each bucket exactly the backup's copy; ``pg_restore --clean`` each
  database in one transaction, owned by its role; start Keycloak, then Trino, then Airflow;
  unpause ``ingest``. Rerunning a restore that failed half-way ends in the same state.
- **The audit trail** (its database and the anchors bucket) is in every backup, copied before
  the dumps as on the local stack. A restore into a release leaves that release's own trail in
  place (``kept_on_restore``): its receiver has already anchored its own chain in the
  object-locked bucket, where no anchor can be removed, so the backup's trail could not be
  proven there. The backed-up trail stays in the backup (docs/operations.md).

The backup holds raw extracts and the lake: it is as sensitive as the lake and is written
owner-only. Secrets are not in it: a restore runs with the same Secrets (from the operator's
secret store); only the TLS certificate may be new.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from santelake.audit.config import AUDIT_BUCKET
from santelake.audit.store import DATABASE as AUDIT_DATABASE
from santelake.digest import file_sha256
from santelake.errors import ConfigError, ServiceError
from santelake.files import write_private
from santelake.names import DATABASES

MANIFEST = "manifest.json"
FORMAT = 1
# The PostgreSQL pod's superuser password file (the chart's statefulset-postgresql.yaml mounts it).
POSTGRES_PASSWORD_FILE = "/var/run/santelake/db-passwords/postgres"
INGEST_DAG = "ingest"
# Stopped for a restore, started again in this order: Keycloak first (Trino reads its keys at start),
# Airflow last (it loads into the lake).
STOPPED = ("keycloak", "trino-coordinator", "trino-worker", "airflow-api-server", "airflow-dag-processor",
           "airflow-scheduler", "airflow-triggerer")
REPLICAS_ANNOTATION = "santelake.io/replicas-before-restore"
SCHEDULER = ("airflow-scheduler", "scheduler")  # component, container
ACTIVE_TASK_STATES = ("queued", "scheduled", "running", "restarting", "deferred", "up_for_retry", "up_for_reschedule")


def object_path(root: Path, key: str) -> Path:
    """Where an object's copy lives under ``root``: its key as a relative path, refused if it could leave."""
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or any(p in ("", ".", "..") for p in key.split("/")):
        raise ServiceError(f"object key {key!r} cannot be stored as a file (empty, absolute or '..' part)")
    return root.joinpath(*parts)


class IngestThroughAirflow:
    """A site's ``ingest`` DAG paused, unpaused and watched through its ``airflow`` CLI."""

    def airflow(self, *args: str, timeout: float = 300) -> str:
        raise NotImplementedError

    def pause_ingest(self) -> None:
        self.airflow("dags", "pause", INGEST_DAG)

    def unpause_ingest(self) -> None:
        self.airflow("dags", "unpause", INGEST_DAG)

    def running_load_tasks(self) -> list[str]:
        return running_load_tasks(self.airflow)


@dataclass(frozen=True)
class Release(IngestThroughAirflow):
    """A Helm release's objects, found by its instance label, reached with ``kubectl``."""

    namespace: str
    name: str
    kubectl: str
    values: Mapping[str, Any]

    def run(self, *args: str, stdin: Path | None = None, stdout: Path | None = None,
            timeout: float = 600) -> str:
        command = [self.kubectl, "-n", self.namespace, *args]
        with contextlib.ExitStack() as files:
            source = files.enter_context(stdin.open("rb")) if stdin else subprocess.DEVNULL
            sink = files.enter_context(stdout.open("wb")) if stdout else subprocess.PIPE
            try:
                result = subprocess.run(command, stdin=source, stdout=sink, stderr=subprocess.PIPE,
                                        timeout=timeout, check=False)
            except subprocess.TimeoutExpired as exc:
                raise ServiceError(f"kubectl {' '.join(args[:3])} did not end within {timeout:.0f} s") from exc
        if result.returncode != 0:
            raise ServiceError(f"kubectl {' '.join(args[:3])} failed: {result.stderr.decode(errors='replace')[-800:]}")
        return "" if stdout else result.stdout.decode()

    def selector(self, component: str | None = None) -> str:
        labels = f"app.kubernetes.io/instance={self.name},app.kubernetes.io/name=santelake"
        return labels + (f",app.kubernetes.io/component={component}" if component else "")

    def workloads(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(
            self.run("get", "deployments,statefulsets", "-l", self.selector(), "-o", "json"))["items"]
        return items

    def pod(self, component: str) -> str:
        pods = json.loads(self.run("get", "pods", "-l", self.selector(component), "-o", "json"))["items"]
        ready = [p["metadata"]["name"] for p in pods if p.get("status", {}).get("phase") == "Running"
                 and all(c.get("ready") for c in p["status"].get("containerStatuses", []))]
        if not ready:
            raise ServiceError(f"release {self.name} in {self.namespace}: no ready {component} pod")
        return str(ready[0])

    def service(self, component: str) -> tuple[str, int]:
        items = json.loads(self.run("get", "services", "-l", self.selector(component), "-o", "json"))["items"]
        if len(items) != 1:
            raise ServiceError(f"release {self.name} in {self.namespace}: {len(items)} {component} Services, not 1")
        return str(items[0]["metadata"]["name"]), int(items[0]["spec"]["ports"][0]["port"])

    def secret(self, name: str, key: str) -> str:
        import base64

        data = json.loads(self.run("get", "secret", name, "-o", "json")).get("data", {})
        if key not in data:
            raise ServiceError(f"Secret {name} in {self.namespace} has no key {key}")
        return base64.b64decode(data[key]).decode()

    def airflow(self, *args: str, timeout: float = 300) -> str:
        component, container = SCHEDULER
        return self.run("exec", self.pod(component), "-c", container, "--", "airflow", *args, timeout=timeout)

    @contextlib.contextmanager
    def forward(self, service: str, port: int) -> Iterator[int]:
        """``kubectl port-forward`` of a Service's port to a free local port, for the block."""
        import threading

        process = subprocess.Popen([self.kubectl, "-n", self.namespace, "port-forward", f"svc/{service}", f":{port}"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert process.stdout is not None
        try:
            line = process.stdout.readline()  # "Forwarding from 127.0.0.1:PORT -> 9000"
            found = re.search(r"127\.0\.0\.1:(\d+)", line)
            if not found:
                process.kill()
                error = process.stderr.read() if process.stderr else ""
                raise ServiceError(f"kubectl port-forward svc/{service} failed: {(line + error).strip()[-500:]}")
            # It prints a line per connection: read them, or a full pipe would stop it.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            yield int(found.group(1))
        finally:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)

    # What backup() and restore() ask of a site (``Site``), for a Helm release.

    def describe(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "release": self.name}

    def databases(self) -> dict[str, str]:
        # The trail's database keeps its owner and grants as dumped (its writer may only insert).
        return {database: role for role, database in DATABASES.items()} | {AUDIT_DATABASE: ""}

    def kept_on_restore(self) -> tuple[set[str], set[str]]:
        return {AUDIT_DATABASE}, {AUDIT_BUCKET}

    def dump(self, database: str, path: Path) -> None:
        self.run("exec", self.pod("postgresql"), "-c", "postgresql", "--",
                 *_psql_shell('pg_dump -Fc --username postgres --dbname "$1"'), database, stdout=path, timeout=3600)

    def load(self, database: str, role: str, path: Path) -> None:
        self.run("exec", "-i", self.pod("postgresql"), "-c", "postgresql", "--",
                 *_psql_shell(PG_RESTORE + ' --no-owner --no-acl --role "$1" --username postgres --dbname "$2"'),
                 role, database, stdin=path, timeout=3600)

    def bucket_names(self) -> list[str]:
        return sorted({*_buckets(self.values).values(), AUDIT_BUCKET})

    def copied_before_dumps(self) -> list[str]:
        # An anchor newer than the dumped trail would read as a cut tail: anchors first.
        return [AUDIT_BUCKET]

    def object_store(self) -> contextlib.AbstractContextManager[Any]:
        return _object_store(self)

    def _stoppable(self) -> list[tuple[str, dict[str, Any]]]:
        """The release's workloads a restore stops, in STOPPED's order."""
        workloads = {w["metadata"]["labels"]["app.kubernetes.io/component"]: w for w in self.workloads()}
        return [(c, workloads[c]) for c in STOPPED if c in workloads]

    def stop(self, report: Callable[[str], None], timeout: float) -> None:
        stopped = self._stoppable()
        for component, workload in stopped:
            kind, name = workload["kind"].lower(), workload["metadata"]["name"]
            annotations = workload["metadata"].get("annotations") or {}
            if REPLICAS_ANNOTATION not in annotations:
                self.run("annotate", f"{kind}/{name}",
                         f"{REPLICAS_ANNOTATION}={workload['spec'].get('replicas', 1)}")
            report(f"stopping {component}")
            self.run("scale", f"{kind}/{name}", "--replicas=0")
        for component, _ in stopped:
            self.run("wait", "--for=delete", "pod", "-l", self.selector(component), f"--timeout={timeout:.0f}s",
                     timeout=timeout + 30)

    def start(self, report: Callable[[str], None], timeout: float) -> None:
        """Start what ``stop`` stopped: the workloads carrying its replica count annotation (a rerun
        after a failure finds them the same way), in STOPPED's order, each ready before the next."""
        for component, workload in self._stoppable():
            replicas = (workload["metadata"].get("annotations") or {}).get(REPLICAS_ANNOTATION)
            if replicas is None:
                continue
            kind, name = workload["kind"].lower(), workload["metadata"]["name"]
            report(f"starting {component} ({replicas})")
            self.run("scale", f"{kind}/{name}", f"--replicas={replicas}")
            self.run("rollout", "status", f"{kind}/{name}", f"--timeout={timeout:.0f}s", timeout=timeout + 30)
            self.run("annotate", f"{kind}/{name}", f"{REPLICAS_ANNOTATION}-")


def release_of(namespace: str, name: str, kubectl: str, values: Mapping[str, Any]) -> Release:
    """The release, refused if its data is not in the chart's bundled stores (back those up with their own tools)."""
    if not values.get("postgresql", {}).get("bundled", True):
        raise ConfigError("postgresql.bundled is false: back up the external PostgreSQL with its own tools "
                          "(docs/operations.md, Back up and restore)")
    if values.get("objectStorage", {}).get("type") != "minio":
        raise ConfigError(f"objectStorage.type is {values.get('objectStorage', {}).get('type')!r}: santelake backup "
                          "copies the bundled MinIO only; use the store's own snapshots (docs/operations.md)")
    return Release(namespace, name, kubectl, values)


def _buckets(values: Mapping[str, Any]) -> dict[str, str]:
    return dict(values["objectStorage"]["buckets"])


@contextlib.contextmanager
def _object_store(release: Release) -> Iterator[Any]:
    """The bundled MinIO's root client, through a port-forward, TLS verified against the release's CA
    under the Service's own name (the certificate need not name localhost)."""
    import tempfile

    import urllib3
    from minio import Minio

    service, port = release.service("objectstorage")
    root = release.values["objectStorage"]["minio"]["rootSecret"]
    tls = release.values["tls"]["existingSecret"]
    with tempfile.TemporaryDirectory() as work, release.forward(service, port) as local:
        ca = Path(work) / "ca.crt"
        ca.write_text(release.secret(tls, "ca.crt"))
        http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(ca), server_hostname=service,
                                   assert_hostname=service, timeout=urllib3.Timeout(connect=10, read=300),
                                   retries=urllib3.Retry(total=3, backoff_factor=0.5))
        yield Minio(f"127.0.0.1:{local}", access_key=release.secret(root, "root-user"),
                    secret_key=release.secret(root, "root-password"), secure=True, http_client=http,
                    region="us-east-1")


def _psql_shell(command: str) -> list[str]:
    return ["sh", "-c", f'PGPASSWORD="$(cat {POSTGRES_PASSWORD_FILE})" exec {command}', "sh"]


def _json_line(output: str) -> list[dict[str, Any]]:
    """The JSON list an ``airflow ... -o json`` command printed after its warnings."""
    found: list[dict[str, Any]] = json.loads(
        next((line for line in reversed(output.splitlines()) if line.startswith("[")), "[]"))
    return found


class Site(Protocol):
    """Where a backup comes from and a restore goes to: a Helm release (``Release``), or the local
    stack (``santelake.runtime.backup.LocalSite``)."""

    def describe(self) -> dict[str, Any]: ...
    def pause_ingest(self) -> None: ...
    def unpause_ingest(self) -> None: ...
    def running_load_tasks(self) -> list[str]: ...
    def databases(self) -> dict[str, str]: ...  # database -> the role a restore gives it ("": as dumped)
    def kept_on_restore(self) -> tuple[set[str], set[str]]: ...  # databases, buckets a restore leaves as they are
    def dump(self, database: str, path: Path) -> None: ...
    def load(self, database: str, role: str, path: Path) -> None: ...
    def bucket_names(self) -> list[str]: ...
    def copied_before_dumps(self) -> list[str]: ...  # buckets whose objects point at database rows, not back
    def object_store(self) -> contextlib.AbstractContextManager[Any]: ...
    def stop(self, report: Callable[[str], None], timeout: float) -> None: ...
    def start(self, report: Callable[[str], None], timeout: float) -> None: ...


# pg_restore as every restore runs it: all or nothing, the database's objects replaced.
PG_RESTORE = "pg_restore --clean --if-exists --single-transaction --exit-on-error"


def running_load_tasks(airflow: Callable[..., str]) -> list[str]:
    """The ``ingest`` tasks queued or running. (A paused DAG's runs get no new task started, so a run
    whose load ended waits with its sweep unstarted: that is a quiet state.)"""
    busy = []
    for run in _json_line(airflow("dags", "list-runs", INGEST_DAG, "--state", "running", "-o", "json")):
        tasks = _json_line(airflow("tasks", "states-for-dag-run", INGEST_DAG, run["run_id"], "-o", "json"))
        busy += [t["task_id"] for t in tasks if t.get("state") in ACTIVE_TASK_STATES]
    return busy


def _wait_for_no_running_load(site: Site, timeout: float, report: Callable[[str], None]) -> None:
    deadline = time.monotonic() + timeout
    while busy := site.running_load_tasks():
        if time.monotonic() > deadline:
            raise ServiceError(f"{INGEST_DAG} tasks {busy} still active after {timeout:.0f} s; the backup stopped")
        report(f"waiting for the running {INGEST_DAG} task(s) {busy} to end")
        time.sleep(10)


def backup(site: Site, target: Path, *, report: Callable[[str], None] = print, load_timeout: float = 3600,
           extra: Callable[[Path, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Back up ``site`` into the empty or new directory ``target``; returns the manifest. ``extra``
    adds files of the site's own (and their manifest entries) before the manifest is written."""
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target}: not empty; a backup goes into a new directory")
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.chmod(0o700)
    manifest: dict[str, Any] = {"format": FORMAT, **site.describe(),
                                "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                                "databases": {}, "buckets": {}}
    report(f"pausing the {INGEST_DAG} DAG")
    site.pause_ingest()
    try:
        _wait_for_no_running_load(site, load_timeout, report)
        first = site.copied_before_dumps()
        with site.object_store() as client:
            for bucket in first:
                manifest["buckets"][bucket] = _copy_bucket(client, bucket, target / "buckets" / bucket, report)
        for database, role in sorted(site.databases().items()):
            path = target / f"{database}.dump"
            report(f"pg_dump {database}")
            path.touch(mode=0o600)
            site.dump(database, path)
            manifest["databases"][database] = {"role": role, "file": path.name, "sha256": file_sha256(path),
                                               "bytes": path.stat().st_size}
        with site.object_store() as client:
            for bucket in site.bucket_names():
                if bucket not in first:
                    manifest["buckets"][bucket] = _copy_bucket(client, bucket, target / "buckets" / bucket, report)
        if extra is not None:
            extra(target, manifest)
    finally:
        report(f"unpausing the {INGEST_DAG} DAG")
        site.unpause_ingest()
    manifest["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    write_private(target / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _copy_bucket(client: Any, bucket: str, root: Path, report: Callable[[str], None]) -> list[dict[str, Any]]:
    objects = []
    markers = 0
    for item in client.list_objects(bucket, recursive=True):
        if item.object_name.endswith("/") and not item.size:
            markers += 1  # an empty "directory" marker some S3 clients write: nothing to keep
            continue
        path = object_path(root, item.object_name)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        stat = client.fget_object(bucket, item.object_name, str(path))
        path.chmod(0o600)
        metadata = {k.lower(): v for k, v in (stat.metadata or {}).items() if k.lower().startswith("x-amz-meta-")}
        objects.append({"key": item.object_name, "sha256": file_sha256(path), "bytes": path.stat().st_size,
                        "metadata": metadata})
    report(f"{bucket}: {len(objects)} objects, {sum(o['bytes'] for o in objects)} bytes"
           + (f" ({markers} empty directory markers left out)" if markers else ""))
    return objects


def read_manifest(source: Path) -> dict[str, Any]:
    """The backup's manifest, every file it lists checked (present, same size and SHA-256)."""
    path = source / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a santelake backup manifest ({exc})") from exc
    if manifest.get("format") != FORMAT or "finished" not in manifest:
        raise ConfigError(f"{path}: format {manifest.get('format')!r} or unfinished backup; this santelake "
                          f"restores format {FORMAT}")
    problems = []
    files = [(source / d["file"], d) for d in manifest["databases"].values()]
    files += [(object_path(source / "buckets" / bucket, o["key"]), o)
              for bucket, objects in manifest["buckets"].items() for o in objects]
    if "secrets" in manifest:  # a local stack's, sealed (santelake.runtime.backup)
        files.append((source / manifest["secrets"]["file"], manifest["secrets"]))
    for file, entry in files:
        if not file.is_file():
            problems.append(f"{file}: missing")
        elif file.stat().st_size != entry["bytes"] or file_sha256(file) != entry["sha256"]:
            problems.append(f"{file}: differs from the manifest (size or SHA-256)")
    if problems:
        raise ConfigError(f"{source}: the backup is damaged; nothing was restored:\n  " + "\n  ".join(problems[:20]))
    return manifest


def restore(site: Site, source: Path, *, report: Callable[[str], None] = print, timeout: float = 1800,
            manifest: dict[str, Any] | None = None) -> None:
    """Restore the backup in ``source`` into ``site``, replacing its lake, extracts and databases."""
    manifest = manifest if manifest is not None else read_manifest(source)
    kept_databases, kept_buckets = site.kept_on_restore()
    missing = set(site.bucket_names()) - set(manifest["buckets"]) - kept_buckets
    if missing:
        raise ConfigError(f"{source}: the backup has no copy of bucket(s) {sorted(missing)} this site uses")
    site.stop(report, timeout)
    with site.object_store() as client:
        for bucket, objects in sorted(manifest["buckets"].items()):
            if bucket in site.bucket_names() and bucket not in kept_buckets:
                _mirror(client, bucket, source / "buckets" / bucket, objects, report)
    for database, entry in sorted(manifest["databases"].items()):
        if database in kept_databases:
            report(f"{database}: this site's own, left as it is (the backup keeps its copy in {entry['file']})")
            continue
        report(f"pg_restore {database}")
        site.load(database, entry["role"], source / entry["file"])
    site.start(report, timeout)
    # The backup's Airflow database has ingest paused (the backup paused it while dumping).
    site.unpause_ingest()
    report("restored")


def _mirror(client: Any, bucket: str, root: Path, objects: list[dict[str, Any]],
            report: Callable[[str], None]) -> None:
    """Make ``bucket`` hold exactly the backup's objects (what else it holds is removed)."""
    from minio.deleteobjects import DeleteObject

    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    wanted = {o["key"]: o for o in objects}
    extra = [item.object_name for item in client.list_objects(bucket, recursive=True)
             if item.object_name not in wanted]
    for error in client.remove_objects(bucket, [DeleteObject(key) for key in extra]):
        raise ServiceError(f"{bucket}: cannot remove {error.name}: {error.message}")
    for key, entry in wanted.items():
        client.fput_object(bucket, key, str(object_path(root, key)), metadata=entry["metadata"] or None)
    report(f"{bucket}: {len(wanted)} objects restored, {len(extra)} removed")
