"""The data catalogue's public view, locally: ``santelake catalogue --serve`` on HTTPS (loopback),
rebuilt from the lake every 5 minutes. Started last: its first build reads the lake's figures."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from santelake.locations import ENV_POLICIES_DIR, ENV_SCHEMAS_DIR, policies_dir, schemas_dir
from santelake.runtime import process
from santelake.runtime.process import ProcessSpec
from santelake.runtime.services.base import Health, Service


class CatalogueServer(Service):
    name = "catalogue"
    port_keys = ("catalogue",)

    @property
    def site_dir(self) -> Path:
        return self.layout.service_dir("catalogue") / "site"

    def prepare(self) -> None:
        self.site_dir.mkdir(parents=True, exist_ok=True)

    def processes(self) -> list[ProcessSpec]:
        command = [str(Path(sys.executable).parent / "santelake"),
                   "--state-dir", str(self.layout.settings.state_dir.resolve()),
                   "catalogue", "--serve", "--view", "public", "--out", str(self.site_dir.resolve())]
        # The policies and schemas `up` found: the server runs in a folder of its own.
        env = dict(os.environ) | {ENV_POLICIES_DIR: str(policies_dir().resolve()),
                                 ENV_SCHEMAS_DIR: str(schemas_dir().resolve())}
        return [self.spec(command, env, cwd=self.layout.service_dir("catalogue"))]

    def refresh(self) -> bool:
        """Ask the running server for a rebuild now (after a load); False if it is not running."""
        for spec in self.processes():
            pid = process.read_pid(spec.pid_file)
            if pid is None:
                return False
            os.kill(pid, signal.SIGHUP)
        return True

    def health(self) -> Health:
        status, body = self.https_get(f"{self.url}/index.html")
        if status != 200:
            return Health(False, f"HTTP {status}" if status else body.decode(errors="replace"))
        return Health(True, "serving the public view")
