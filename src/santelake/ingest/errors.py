"""Why a file was not published."""

from __future__ import annotations

from pathlib import Path

from santelake.errors import SantelakeError


class SourceFileError(SantelakeError):
    """The file cannot be read as its schema declares: nothing of it is published."""

    def __init__(self, path: Path, problem: str, *, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line


class FileRejectedError(SantelakeError):
    """The file was read but failed its gate (too many rejected rows): nothing is published."""


class PlatformFaultError(SantelakeError):
    """A service a load needs (the object store, the catalog's database) failed during it.

    Nothing of the file is published (the commit is atomic) and the extract stays waiting in
    the landing bucket; the next run retries it.
    """
