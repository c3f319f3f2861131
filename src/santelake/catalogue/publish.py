"""The catalogue's public view published where the chart's catalogue server reads it.

In a cluster the catalogue's server holds no account of the lake: it serves a ConfigMap mounted
into its pod. The scheduler's ``catalogue`` DAG builds the public view (it reads the lake as
the loads do) and patches the ConfigMap, through the Kubernetes API, with the same target the
policy apply uses for Trino's rules. A build is skipped while the fingerprint the ConfigMap
holds (policies, schemas, each table's snapshot) is the lake's; the pages and the fingerprint
change in one patch.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from santelake.access.enforce import RulesTarget
from santelake.errors import ConfigError

FINGERPRINT = "site.fingerprint"
# A ConfigMap holds at most 1 MiB; the public view is about 64 KiB for the demo's tables.
MAX_BYTES = 900 << 10


def publish(target: RulesTarget, build: Callable[[Path], object], fingerprint: Callable[[], str]) -> list[str]:
    """Build into a scratch folder and put every page in ``target``; what changed (empty: nothing)."""
    mark = fingerprint()
    if target.read(FINGERPRINT) == mark:
        return []
    with tempfile.TemporaryDirectory(prefix="santelake-catalogue-") as scratch:
        out = Path(scratch) / "site"
        build(out)
        entries = sorted(out.iterdir())
        nested = [p.name for p in entries if not p.is_file()]
        if nested:
            raise ConfigError(f"the catalogue holds folders ({', '.join(nested)}): a ConfigMap holds files only")
        files = {p.name: p.read_text(encoding="utf-8") for p in entries}
    size = sum(len(content.encode()) for content in files.values())
    if size > MAX_BYTES:
        raise ConfigError(f"the catalogue's public view is {size / 1024:.0f} KiB, more than a ConfigMap holds "
                          f"({MAX_BYTES / 1024:.0f} KiB kept as the limit)")
    return target.put(files | {FINGERPRINT: mark})


def publish_from_environment() -> list[str]:
    """The DAG's task: publish to ``SANTELAKE_CATALOGUE_TARGET``, reading the lake as the loads do."""
    from santelake.access.enforce import rules_target
    from santelake.catalogue.cli import site_builder, site_fingerprint
    from santelake.lake.catalog import open_catalog
    from santelake.settings import PlatformSettings

    settings = PlatformSettings.from_environment()
    if settings.catalogue_target is None:
        return ["no catalogue target (SANTELAKE_CATALOGUE_TARGET): the local stack's catalogue server builds its own"]

    def catalog() -> object:
        return open_catalog(settings)

    changed = publish(rules_target(settings.catalogue_target), site_builder("public", None, None, catalog),
                      site_fingerprint(None, None, catalog))
    return changed or ["the catalogue is up to date: no table, policy or schema changed"]
