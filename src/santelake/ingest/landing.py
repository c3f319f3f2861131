"""The landing bucket: where source extracts arrive, wait, and leave once loaded or rejected.

An extract lands as the object ``incoming/<source>/<file name>`` (``santelake land``, or any
S3 client with the ingest account's keys). An S3 object appears whole or not at all, so a
half-uploaded extract is never seen. The ingestion DAG (``ingest.dag``) finds the waiting
objects every 30 s and loads them in the sources' load order; then each object leaves ``incoming/``:

- loaded (published, or found already loaded): deleted at once, or moved to
  ``loaded/<source>/`` and deleted after ``landing_keep_loaded_days``. Raw extracts hold
  NIRs and names; once the lake holds their pseudonymised rows they are only a risk, so by
  default nothing of them is kept. The load's record in ``ops.ingested_files`` stays.
- rejected (a structural fault, too many bad rows, failed expectations, an unknown source):
  moved to ``rejected/<source>/`` with the reason in the object's metadata, for the data
  engineer to read (``santelake landing status``), and deleted after
  ``landing_keep_rejected_days``.

A file is loaded at most once whatever happens: the lake records each file's SHA-256
(``ingest.load``), so an object loaded before a crash and still waiting is found loaded on
the next run and only moved.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote

from santelake.errors import ConfigError, SantelakeError
from santelake.ingest import runner
from santelake.ingest.errors import FileRejectedError, PlatformFaultError, SourceFileError
from santelake.ingest.load import PUBLISHED, LoadResult
from santelake.lake.storage import ingest_client
from santelake.settings import PlatformSettings

log = logging.getLogger(__name__)

INCOMING = "incoming"
LOADED = "loaded"
REJECTED = "rejected"
STATES = (INCOMING, LOADED, REJECTED)
# User metadata of a rejected object: why (URL-quoted: S3 metadata is ASCII).
REASON_KEY = "santelake-reason"
MAX_REASON = 1500
# S3's limit of a single copy; a larger object is copied in parts.
SINGLE_COPY_BYTES = 5 << 30


@dataclass(frozen=True)
class LandedObject:
    key: str
    size: int
    modified: dt.datetime
    reason: str = ""

    @property
    def state(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def source(self) -> str:
        """The source folder the object is in ('' for an object outside any)."""
        parts = PurePosixPath(self.key).parts
        return parts[1] if len(parts) == 3 else ""

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name


@dataclass(frozen=True)
class Outcome:
    """What became of one landed object."""

    key: str
    source: str
    status: str  # published, already-published, rejected
    message: str
    result: LoadResult | None = None


def incoming_key(source: str, name: str) -> str:
    if not source or "/" in source or not name or "/" in name or name.startswith("."):
        raise ConfigError(f"cannot land {name!r} for {source!r}: a source and a file name, neither with a '/'")
    return f"{INCOMING}/{source}/{name}"


class Landing:
    """The landing bucket through one S3 client."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def of(cls, settings: PlatformSettings) -> Landing:
        return cls(ingest_client(settings), settings.landing_bucket)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def land(self, source: str, path: Path, name: str | None = None) -> str:
        """Upload ``path`` as a waiting extract of ``source``; returns its key."""
        if path.is_symlink() or not path.is_file():
            raise ConfigError(f"{path}: not a regular file; only regular files are landed")
        key = incoming_key(source, name or path.name)
        self.client.fput_object(self.bucket, key, str(path))
        return key

    def objects(self, state: str) -> list[LandedObject]:
        """The objects in one state, by key; a rejected one carries its reason."""
        found = []
        for item in self.client.list_objects(self.bucket, prefix=f"{state}/", recursive=True):
            reason = ""
            if state == REJECTED:
                stat = self.client.stat_object(self.bucket, item.object_name)
                reason = unquote((stat.metadata or {}).get(f"x-amz-meta-{REASON_KEY}", ""))
            found.append(LandedObject(item.object_name, item.size, item.last_modified, reason))
        return sorted(found, key=lambda o: o.key)

    def waiting(self, order: Sequence[str]) -> list[LandedObject]:
        """Waiting objects, source by source in ``order``, then those of no known source."""
        rank = {source: index for index, source in enumerate(order)}
        return sorted(self.objects(INCOMING), key=lambda o: (rank.get(o.source, len(rank)), o.modified, o.key))

    def fetch(self, obj: LandedObject, folder: Path) -> Path:
        """Download ``obj`` into ``folder`` under its own name."""
        path = folder / obj.name
        self.client.fget_object(self.bucket, obj.key, str(path))
        return path

    def _move(self, obj: LandedObject, state: str, metadata: dict[str, str] | None = None) -> None:
        from minio.commonconfig import REPLACE, ComposeSource, CopySource

        target = f"{state}/{obj.source or '_'}/{obj.name}"
        if obj.size > SINGLE_COPY_BYTES:
            self.client.compose_object(self.bucket, target, [ComposeSource(self.bucket, obj.key)], metadata=metadata)
        else:
            self.client.copy_object(self.bucket, target, CopySource(self.bucket, obj.key), metadata=metadata,
                                    metadata_directive=REPLACE if metadata else None)
        self.client.remove_object(self.bucket, obj.key)

    def loaded(self, obj: LandedObject, keep_days: int) -> None:
        if keep_days:
            self._move(obj, LOADED)
        else:
            self.client.remove_object(self.bucket, obj.key)

    def rejected(self, obj: LandedObject, reason: str) -> None:
        self._move(obj, REJECTED, {REASON_KEY: quote(reason[:MAX_REASON])})

    def sweep(self, now: dt.datetime, keep_loaded_days: int, keep_rejected_days: int) -> list[str]:
        """Delete the loaded and rejected objects older than their retention; returns their keys."""
        deleted = []
        for state, days in ((LOADED, keep_loaded_days), (REJECTED, keep_rejected_days)):
            for item in self.client.list_objects(self.bucket, prefix=f"{state}/", recursive=True):
                if now - item.last_modified >= dt.timedelta(days=days):
                    self.client.remove_object(self.bucket, item.object_name)
                    deleted.append(item.object_name)
        return deleted


def load_waiting(settings: PlatformSettings, report: Callable[[Outcome], None] = lambda _: None) -> list[Outcome]:
    """Load every waiting extract, in load order; each leaves ``incoming/`` loaded or rejected.

    A fault of the file rejects it and the run goes on; a fault of the platform (storage,
    catalog) raises :class:`PlatformFaultError`, leaving the object waiting for the next run.
    """
    try:
        return _load_waiting(settings, report)
    except SantelakeError:
        raise
    except Exception as exc:
        fault = platform_fault(exc, settings)
        if fault is None:
            raise
        # Not chained: the driver's text carries the SQL and its parameters; the class and the
        # first line say what failed.
        raise fault from None


def platform_fault(exc: BaseException, settings: PlatformSettings) -> PlatformFaultError | None:
    """``exc`` as the service it says failed, or None when it is not a service's fault."""
    import sqlalchemy.exc

    cause: BaseException
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and not isinstance(exc, sqlalchemy.exc.DataError):
        cause = exc.orig if exc.orig is not None else exc
        service = f"the catalog's database (PostgreSQL at {settings.catalog_host}:{settings.catalog_port})"
    elif isinstance(exc, OSError) and exc.filename is not None:
        cause = exc  # a local file: the spill or the download, in the work folder (a full disk, say)
        service = f"the load's work folder ({settings.work_dir})"
    elif isinstance(exc, OSError) or type(exc).__module__.startswith(("urllib3", "minio")):
        cause = exc
        service = f"the object store ({settings.s3_endpoint})"
    else:
        return None
    detail = (str(cause).strip().splitlines() or [""])[0][:300]
    if _is_full(cause):
        return PlatformFaultError(f"the load stopped: {service} is full ({type(cause).__name__}: {detail}). Nothing "
                                  "of the file was published; it stays waiting in the landing bucket. Free space or "
                                  "add capacity there; the next run retries it.")
    return PlatformFaultError(f"the load stopped: {service} failed ({type(cause).__name__}: {detail}). Nothing "
                              "of the file was published; it stays waiting in the landing bucket and the next run "
                              "retries it.")


# What a full disk looks like: a local ENOSPC; S3's 507 Insufficient Storage (MinIO names it
# XMinioStorageFull; Arrow's S3 client reports the status and the name in its message).
_FULL_MARKS = ("XMinioStorageFull", "HTTP status 507", "InsufficientStorage", "No space left on device")


def _is_full(exc: BaseException) -> bool:
    import errno

    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return any(mark in str(exc) for mark in _FULL_MARKS)


def _load_waiting(settings: PlatformSettings, report: Callable[[Outcome], None]) -> list[Outcome]:
    landing = Landing.of(settings)
    declared = runner.schemas(settings.schemas_dir)
    sources = {s.name: s for s in runner.sources(declared)}
    waiting = landing.waiting(list(sources))
    if not waiting:
        return []
    spill = settings.work_dir / "spill"
    spill.mkdir(parents=True, exist_ok=True)
    loader = runner.loader(settings, declared=declared, spill_dir=spill)
    outcomes = []
    for obj in waiting:
        outcome = _load_one(settings, landing, loader, sources, obj)
        outcomes.append(outcome)
        report(outcome)
        _record(outcome)
    return outcomes


def _record(outcome: Outcome) -> None:
    """The outcome in the audit trail: what was loaded or rejected, by whom, with its counts."""
    from dataclasses import asdict

    from santelake.audit import client

    result = asdict(outcome.result) if outcome.result is not None else None
    if result is not None:
        result.pop("data_docs", None)  # a path of the worker's, no fact about the load
    client.record("load", outcome.key, {"status": outcome.status, "source": outcome.source,
                                        "message": outcome.message, "result": result})


def _load_one(settings: PlatformSettings, landing: Landing, loader: Any, sources: dict[str, Any],
              obj: LandedObject) -> Outcome:
    uri = landing.uri(obj.key)
    if obj.source not in sources:
        reason = (f"{uri}: no source named {obj.source!r}; extracts land as {INCOMING}/<source>/<file>, "
                  f"with <source> one of {', '.join(sources)}")
        landing.rejected(obj, reason)
        return Outcome(obj.key, obj.source, "rejected", reason)
    declared = sources[obj.source]
    scratch = Path(tempfile.mkdtemp(prefix="landed-", dir=settings.work_dir))
    try:
        path = landing.fetch(obj, scratch)
        try:
            result = loader.load(declared.full_name, path)
        except (FileRejectedError, SourceFileError) as exc:
            reason = str(exc).replace(str(path), uri)
            landing.rejected(obj, reason)
            return Outcome(obj.key, obj.source, "rejected", reason)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if result.status == "already-rejected":
        landing.rejected(obj, f"{uri}: {result.message}")
        return Outcome(obj.key, obj.source, "rejected", result.message, result)
    # An extract holding a person who objected is not kept: its copy would still name them.
    landing.loaded(obj, 0 if result.rows_opposed else settings.landing_keep_loaded_days)
    message = (f"{uri}: {result.rows_published:,} rows published, {result.rows_quarantined:,} quarantined"
               if result.status == PUBLISHED else f"{uri}: {result.message}")
    return Outcome(obj.key, obj.source, result.status, message, result)
