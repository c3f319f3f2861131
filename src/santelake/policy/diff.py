"""Whose access changes between two git revisions of ``policies/`` (and ``iceberg_schemas/``)."""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

from santelake.errors import SantelakeError
from santelake.policy.explain import TableAccess, user_access
from santelake.policy.loader import load_policies
from santelake.schema import load_schemas


def _checkout(repo: Path, revision: str, paths: tuple[str, ...], target: Path) -> None:
    result = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", revision, *paths],
                            capture_output=True, check=False)
    if result.returncode != 0:
        raise SantelakeError(f"git cannot read {', '.join(paths)} at {revision!r}: "
                             f"{result.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(result.stdout)) as archive:
        archive.extractall(target, filter="data")


def access_at(repo: Path, revision: str, policies: str, schemas: str,
              day: dt.date) -> dict[str, dict[str, TableAccess]]:
    """user -> table -> access, as the files at ``revision`` grant it on ``day``."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _checkout(repo, revision, (policies, schemas), root)
        policy_set = load_policies(root / policies)
        declared = {t.full_name: t for t in load_schemas(root / schemas)}
        return {p.username: {a.table: a for a in user_access(policy_set, declared, day, p.username)}
                for p in policy_set.people}


def diff_access(before: dict[str, dict[str, TableAccess]], after: dict[str, dict[str, TableAccess]]) -> list[str]:
    """One line per change: ``+`` gained, ``-`` lost, ``~`` changed (columns, rows, rule or end date)."""
    lines = []
    for user in sorted({*before, *after}):
        old, new = before.get(user, {}), after.get(user, {})
        for table in sorted({*old, *new}):
            if table not in old:
                lines.append(f"+ {user} gains {new[table].summary()}")
            elif table not in new:
                lines.append(f"- {user} loses {old[table].table} (was via {old[table].via})")
            elif old[table] != new[table]:
                lines.append(f"~ {user} {table}:\n    before: {old[table].summary()}\n"
                             f"    after:  {new[table].summary()}")
    return lines


def diff_revisions(repo: Path, first: str, second: str, policies: str, schemas: str, day: dt.date) -> list[str]:
    return diff_access(access_at(repo, first, policies, schemas, day), access_at(repo, second, policies, schemas, day))
