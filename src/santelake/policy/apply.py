"""Put compiled policies on a running installation, without restarting anything.

Trino re-reads ``rules.json`` and ``groups.txt`` every few seconds (``security.refresh-period``
and ``file.refresh-period``), so writing them atomically is enough; Keycloak groups are
synced through its admin API. An expired project loses access at the next apply: run it
daily (Airflow) as well as after each approved change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from santelake.errors import ServiceError
from santelake.locations import policies_dir, schemas_dir
from santelake.policy.compile import Compiled, compile_policies
from santelake.policy.errors import Fault
from santelake.policy.lint import lint
from santelake.policy.loader import load_policies
from santelake.policy.model import PolicySet
from santelake.runtime.layout import Layout
from santelake.schema import load_schemas


@dataclass(frozen=True)
class Build:
    policies: PolicySet
    faults: tuple[Fault, ...]  # warnings only: errors raise
    compiled: Compiled


def build(policies_path: Path | None = None, schemas_path: Path | None = None,
          day: dt.date | None = None) -> Build:
    """Load, lint and compile; ``PolicyError`` lists every error and nothing is produced."""
    policies = load_policies(policies_dir(policies_path))
    schemas = {t.full_name: t for t in load_schemas(schemas_dir(schemas_path))}
    day = day or dt.date.today()
    faults = lint(policies, schemas, day)
    compiled = compile_policies(policies, schemas, day, faults)
    return Build(policies, tuple(faults), compiled)


def write_atomically(path: Path, content: str) -> bool:
    """Write ``content`` unless the file already holds it; True if it changed."""
    if path.exists() and path.read_text() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(content)
    tmp.replace(path)
    return True


def apply(layout: Layout, compiled: Compiled, *, keycloak: bool = True) -> list[str]:
    """Write Trino's rules and groups, sync Keycloak; returns what changed."""
    from santelake.render.trino import GROUP_FILE, RULES_FILE
    from santelake.runtime.services.trino import Trino

    etc = Trino(layout).etc
    if not etc.is_dir():
        raise ServiceError(f"{etc} does not exist: run `santelake up` first")
    changes = []
    if write_atomically(etc / RULES_FILE, compiled.rules_json):
        changes.append(f"wrote {etc / RULES_FILE}")
    if write_atomically(etc / GROUP_FILE, compiled.group_file):
        changes.append(f"wrote {etc / GROUP_FILE}")
    if keycloak:
        from santelake.policy.keycloak import sync_groups
        from santelake.runtime.services.keycloak import Keycloak

        changes += sync_groups(Keycloak(layout).admin(), compiled)
    return changes


def apply_today() -> list[str]:
    """Compile the policies for today and apply them to this installation (the daily DAG's task)."""
    from santelake.config import load_settings

    return apply(Layout(load_settings()), build().compiled)
