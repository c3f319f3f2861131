"""Errors about table files and about applying them to live tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from santelake.errors import SantelakeError


class SchemaFileError(SantelakeError):
    """A table file breaks the format: names the file, line, column and key at fault (line 0: no line)."""

    def __init__(self, path: Path, line: int, column: int, key: str, message: str) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.key = key
        self.message = message
        where = f"{path}:{line}:{column}" if line else str(path)
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


class SchemaEvolutionError(SantelakeError):
    """A live table cannot be brought to its declared schema without breaking readers or data."""

    def __init__(self, path: Path, table: str, problems: Sequence[str]) -> None:
        self.path = path
        self.table = table
        self.problems = tuple(problems)
        listed = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{path}: cannot evolve table {table}; nothing was changed:\n{listed}")
