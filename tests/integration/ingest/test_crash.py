"""A load killed with SIGKILL at any step, then retried, leaves every row exactly once.

The kill is real (the loader runs in a child process that SIGKILLs itself right after the
named step); nothing is mocked.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from santelake.ingest.load import Loader

SCRIPT = Path(__file__).with_name("kill_during_load.py")


@pytest.mark.parametrize("step", ["write", "quarantine", "publish", "record"])
def test_retry_after_sigkill_publishes_every_row_once(
    scratch: tuple[Loader, str], extracts: Path, tmp_path: Path, step: str
) -> None:
    loader, namespace = scratch
    loader.load("snds.beneficiaries", extracts / "beneficiaries.csv")
    lines = (extracts / "outpatient_claims.csv").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "outpatient_claims.csv"
    # One duplicate row, so the quarantine step has something to write.
    path.write_text("\n".join([*lines, lines[7]]) + "\n", encoding="utf-8")
    child = subprocess.run([sys.executable, str(SCRIPT), namespace, "outpatient_claims", str(path), step],
                           capture_output=True, text=True, timeout=300, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]

    result = loader.load("snds.outpatient_claims", path)
    assert result.status in ("published", "already-published")
    claims = loader.catalog.load_table(loader.schemas["snds.outpatient_claims"].identifier).scan().to_arrow()
    assert claims.num_rows == len(lines) - 1
    assert len(set(claims["claim_id"].to_pylist())) == len(lines) - 1
    quarantine = loader.catalog.load_table(loader.schemas["ops.quarantine"].identifier).scan().to_arrow()
    assert quarantine["rule"].to_pylist() == ["duplicate_row"]
    records = loader.catalog.load_table(loader.schemas["ops.ingested_files"].identifier).scan().to_arrow()
    outpatient = [r for r in records.to_pylist() if r["target_table"].endswith("outpatient_claims")]
    assert len(outpatient) == 1 and outpatient[0]["row_count"] == len(lines) - 1
    assert loader.load("snds.outpatient_claims", path).status == "already-published"
