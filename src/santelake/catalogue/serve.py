"""The catalogue's public view, served on HTTPS and rebuilt from the lake at an interval.

Each build goes into a folder of its own, and ``current`` (a symbolic link) is switched to it
once it is complete, so a reader never sees half a site. A build that fails is logged and the
last good site stays served; the pages carry their own "last load" dates, so a stale figure is
never passed off as a fresh one. Only files of the current build are served: no directory
listing, no other method than GET and HEAD, and headers that forbid loading anything from
elsewhere (the pages need nothing from elsewhere).
"""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from santelake.errors import SantelakeError

CURRENT = "current"
BUILDS = "builds"
# The site's own assets only; inline script and style are the pages' search box and styles.
HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'self' 'unsafe-inline'; "
                                "script-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
                                "base-uri 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
    "Strict-Transport-Security": "max-age=31536000",
}

Log = Callable[[str], None]


class Site:
    """Builds of the site under ``root``, the latest complete one at ``root/current``.

    ``fingerprint``: what the site is made from, cheaply (policies, schemas, each table's
    snapshot); a rebuild whose fingerprint is the current build's is skipped.
    """

    def __init__(self, root: Path, build: Callable[[Path], object],
                 fingerprint: Callable[[], str] | None = None) -> None:
        self.root, self._build, self._fingerprint = root, build, fingerprint
        self._built_from: str | None = None

    @property
    def current(self) -> Path:
        return self.root / CURRENT

    def rebuild(self, *, force: bool = False) -> Path | None:
        """One new build, switched to when complete; older builds removed. Returns its folder, or
        None when nothing the site is made from changed since the current build (unless ``force``:
        a rebuild someone asked for)."""
        # Taken before the build: a change during it makes the next rebuild run.
        mark = self._fingerprint() if self._fingerprint is not None else None
        if not force and mark is not None and mark == self._built_from and self.current.exists():
            return None
        builds = self.root / BUILDS
        builds.mkdir(parents=True, exist_ok=True)
        target = builds / f"{time.strftime('%Y%m%dT%H%M%S')}-{time.monotonic_ns()}"
        try:
            self._build(target)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        link = self.root / f".{CURRENT}.new"
        link.unlink(missing_ok=True)
        link.symlink_to(target.relative_to(self.root))
        os.replace(link, self.current)
        for old in builds.iterdir():
            if old != target:
                shutil.rmtree(old, ignore_errors=True)
        self._built_from = mark
        return target


class Handler(SimpleHTTPRequestHandler):
    """The current build's files, read-only, with the site's security headers."""

    server_version = "santelake-catalogue"
    sys_version = ""

    def guess_type(self, path: str | os.PathLike[str]) -> str:
        """The pages are UTF-8 (French descriptions): said in the header, not left to the client's
        guess (HTTP's default for text/* without a charset is ISO-8859-1)."""
        kind = super().guess_type(path)
        return f"{kind}; charset=utf-8" if kind == "text/html" else kind

    def end_headers(self) -> None:
        for name, value in HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def list_directory(self, path: str | os.PathLike[str]) -> Any:
        self.send_error(404, "Not found")
        return None

    def do_POST(self) -> None:
        self.send_error(405, "Read-only")

    do_PUT = do_DELETE = do_PATCH = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        # Addresses are not logged: the public pages' readers are anonymous.
        print(f"{self.command} {self.path.split('?')[0]} {args[1] if len(args) > 1 else ''}", flush=True)


class FolderHandler(Handler):
    """A folder someone else fills (the chart's ConfigMap, published by the scheduler): until it holds
    the site's index, every request gets 503, saying why."""

    def send_head(self) -> Any:
        if not (Path(self.directory) / "index.html").is_file():
            self.send_error(503, "The catalogue is being built: the scheduler publishes it within minutes of "
                                 "the first load")
            return None
        return super().send_head()


def _https_server(handler: Any, bind: str, port: int, cert: Path, key: Path) -> ThreadingHTTPServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    server = ThreadingHTTPServer((bind, port), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def serve_folder(folder: Path, *, bind: str, port: int, cert: Path, key: Path, log: Log = print) -> None:
    """Serve ``folder`` as it is, read-only, until the process is stopped (the chart's catalogue pod)."""
    server = _https_server(partial(FolderHandler, directory=str(folder)), bind, port, cert, key)
    log(f"catalogue (public view) from {folder} on https://{bind}:{port}/")
    server.serve_forever()


def serve(site: Site, *, bind: str, port: int, cert: Path, key: Path, refresh_seconds: float,
          log: Log = print) -> None:
    """Build once (a failure here stops the server: there is nothing to serve), then serve the
    current build and rebuild every ``refresh_seconds`` if the lake, the policies or the schemas
    changed (at a SIGHUP, whatever changed), until the process is stopped."""
    built = site.rebuild()
    log(f"catalogue built in {built}")
    server = _https_server(partial(Handler, directory=str(site.current)), bind, port, cert, key)

    # SIGHUP asks for a rebuild now (`santelake up` sends it once the demo data is loaded).
    wake = threading.Event()
    signal.signal(signal.SIGHUP, lambda *_: wake.set())

    def refresh() -> None:
        while True:
            # Asked for (SIGHUP): rebuilt whatever the fingerprint; on the timer, only if something changed.
            asked = wake.wait(refresh_seconds)
            wake.clear()
            try:
                built = site.rebuild(force=asked)
                if built is not None:
                    log(f"catalogue rebuilt in {built}")
            except (SantelakeError, OSError, ValueError) as error:
                log(f"catalogue rebuild failed, the previous build stays served: {error}")

    threading.Thread(target=refresh, daemon=True, name="catalogue-refresh").start()
    log(f"catalogue (public view) on https://{bind}:{port}/")
    server.serve_forever()
