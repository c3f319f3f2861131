"""Where santelake reads its declarations from: the policy files and the table schemas.

First found wins: an explicit path (a command-line option), the environment
(``SANTELAKE_POLICIES_DIR``, ``SANTELAKE_SCHEMAS_DIR``), then ``policies/`` and
``iceberg_schemas/`` of the source tree the package runs from, then of the current
directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from santelake.errors import ConfigError

ENV_POLICIES_DIR = "SANTELAKE_POLICIES_DIR"
ENV_SCHEMAS_DIR = "SANTELAKE_SCHEMAS_DIR"
POLICIES_DIR = "policies"
SCHEMAS_DIR = "iceberg_schemas"
_SOURCE_TREE = Path(__file__).resolve().parents[2]  # src/santelake/locations.py -> the repository


def _find(explicit: str | Path | None, env_key: str, name: str) -> Path:
    if explicit:
        return Path(explicit)
    if os.environ.get(env_key):
        return Path(os.environ[env_key])
    for base in (_SOURCE_TREE, Path.cwd()):
        if (base / name).is_dir():
            return base / name
    raise ConfigError(f"no {name}/ directory found: pass its path or set {env_key}")


def policies_dir(explicit: str | Path | None = None) -> Path:
    return _find(explicit, ENV_POLICIES_DIR, POLICIES_DIR)


def schemas_dir(explicit: str | Path | None = None) -> Path:
    return _find(explicit, ENV_SCHEMAS_DIR, SCHEMAS_DIR)
