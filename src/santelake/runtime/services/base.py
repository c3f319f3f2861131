"""What every local service provides to the stack."""

from __future__ import annotations

import ssl
import sys
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import dataclass

from santelake.runtime.layout import Layout
from santelake.runtime.process import ProcessSpec, healthy_marker


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str


class Service(ABC):
    """A service: installed and configured by ``prepare``, run as ``processes``."""

    name: str
    # Ports this service listens on, by key of Settings.ports().
    port_keys: tuple[str, ...] = ()

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    @abstractmethod
    def prepare(self) -> None:
        """Install and write configuration; idempotent."""

    @abstractmethod
    def processes(self) -> list[ProcessSpec]:
        """The long-lived processes, in start order."""

    @abstractmethod
    def health(self) -> Health:
        """Whether the service answers as it should."""

    def after_start(self) -> None:  # noqa: B027 - most services need nothing here
        """Create what the platform needs inside the running service; idempotent."""

    @property
    def url(self) -> str:
        return self.layout.url(self.port_keys[0]) if self.port_keys else ""

    def spec(self, command: list[str], env: dict[str, str], *, suffix: str = "", restart: bool = False,
             **kwargs: object) -> ProcessSpec:
        """A process of this service; ``restart``: started again when it exits on its own, under
        ``santelake.runtime.keepalive`` (the pid recorded is the supervisor's, in the same group)."""
        name = self.name + (f"-{suffix}" if suffix else "")
        pid_file = self.layout.pid(name)
        if restart:
            command = [sys.executable, "-m", "santelake.runtime.keepalive", name,
                       "--healthy-file", str(healthy_marker(pid_file)), "--", *command]
        return ProcessSpec(
            name=name, command=command, env=env, log_file=self.layout.log(name),
            pid_file=pid_file, **kwargs,  # type: ignore[arg-type]
        )

    def https_get(self, url: str, timeout: float = 3.0) -> tuple[int, bytes]:
        """GET over TLS verified with the platform CA."""
        context = ssl.create_default_context(cafile=str(self.layout.tls.ca_cert))
        try:
            with urllib.request.urlopen(url, timeout=timeout, context=context) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            return 0, str(exc).encode()
