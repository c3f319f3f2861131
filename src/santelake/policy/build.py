"""The policies as built for one day: loaded, linted and compiled, nothing applied.

Pure: a function of the policy and schema files and the day. Putting the result where it
takes effect (Trino's rules, Keycloak's groups) is ``santelake.access.enforce``'s job.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from santelake.locations import policies_dir, schemas_dir
from santelake.policy.compile import Compiled, compile_policies
from santelake.policy.errors import Fault
from santelake.policy.lint import lint
from santelake.policy.loader import load_policies
from santelake.policy.model import PolicySet
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


def policies_revision(path: Path | None = None) -> str:
    """The git commit the policy files are at, ``+changes`` when they differ from it, or ``unversioned``."""
    import subprocess

    folder = policies_dir(path)
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False)
        if head.returncode != 0:
            return "unversioned"
        changed = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--", "."],
                                 capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unversioned"
    return head.stdout.strip() + ("+changes" if changed.stdout.strip() else "")


def policy_identity(rules_json: str, path: Path | None = None) -> str:
    """What the audit trail records as the policy in force: the compiled rules' SHA-256 and the
    policies' revision, as JSON (written beside Trino's rules)."""
    import hashlib
    import json

    return json.dumps({"rules_sha256": hashlib.sha256(rules_json.encode()).hexdigest(),
                       "revision": policies_revision(path)}, sort_keys=True) + "\n"
