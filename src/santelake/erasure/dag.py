"""The erasure DAG's task: the same erasure as ``santelake erase``, with pseudonyms from the run's configuration."""

from __future__ import annotations

import logging
from typing import Any

from santelake.errors import SantelakeError

log = logging.getLogger(__name__)


def erase_from_conf(conf: dict[str, Any]) -> dict[str, Any]:
    """Erase the pseudonyms of ``conf`` (and every registered person); the report's summary, or an error."""
    from santelake.audit import client
    from santelake.erasure.cli import erasure_of
    from santelake.erasure.erase import read_persons
    from santelake.settings import PlatformSettings

    unknown = set(conf) - {"pseudonyms"}
    if unknown:
        raise SantelakeError(f"the erasure DAG's configuration takes only 'pseudonyms' (a list); got "
                             f"{', '.join(sorted(unknown))}. NIRs are given to `santelake erase` only, never here.")
    given = conf.get("pseudonyms")
    if given is not None and not isinstance(given, list):
        raise SantelakeError("the erasure DAG's 'pseudonyms' is a list of pseudonyms (64 hex characters each)")
    erasure = erasure_of(PlatformSettings.from_environment(), log=log.info)
    persons = read_persons([str(p) for p in given], "the run's configuration", erasure.pseudonymiser,
                           as_pseudonyms=True) if given else None
    report = erasure.run(persons)
    summary = report.summary()
    client.record("erasure", report.erasure_id, summary)
    if not report.done:
        raise SantelakeError(f"{report.erasure_id}: not done: {summary['proof']['hits']} object(s) still name an "
                             f"erased person, {len(report.landed_waiting)} waiting extract(s) hold one; see the log")
    return summary
