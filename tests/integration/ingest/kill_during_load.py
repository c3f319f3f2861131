"""Run a load in this process and SIGKILL it right after a given step (used by test_crash.py).

usage: python kill_during_load.py NAMESPACE SOURCE FILE STEP
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from pathlib import Path

from santelake.config import load_settings
from santelake.ingest import runner
from santelake.ingest.load import Loader
from santelake.lake.catalog import open_catalog
from santelake.runtime.layout import Layout
from santelake.runtime.platform import platform_settings


def main() -> None:
    namespace, source, file, step = sys.argv[1:5]
    settings = platform_settings(Layout(load_settings()))
    schemas = {name: dataclasses.replace(declared, namespace=namespace)
               for name, declared in runner.schemas().items()}

    def maybe_die(reached: str) -> None:
        if reached == step:
            os.kill(os.getpid(), signal.SIGKILL)

    loader = Loader(open_catalog(settings), runner.pseudonymiser(settings), schemas, flush_rows=100,
                    after_step=maybe_die)
    loader.load(f"snds.{source}", Path(file))
    sys.exit(f"the load finished without reaching step {step!r}")


if __name__ == "__main__":
    main()
