"""The catalogue published for the chart's server (catalogue/publish.py): built only when its sources
changed, pages and fingerprint put together; the server answers 503 until the first publish."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from santelake.access.enforce import FolderTarget
from santelake.catalogue.publish import FINGERPRINT, publish
from santelake.catalogue.serve import FolderHandler
from santelake.errors import ConfigError


def _builder(pages: dict[str, str], calls: list[int]):  # type: ignore[no-untyped-def]
    def build(out: Path) -> list[Path]:
        calls.append(1)
        out.mkdir(parents=True)
        for name, text in pages.items():
            (out / name).write_text(text)
        return [out / name for name in pages]
    return build


def test_pages_are_published_once_per_change_of_what_they_are_made_from(tmp_path: Path) -> None:
    site = tmp_path / "configmap"
    site.mkdir()
    target, calls, mark = FolderTarget(site), [], {"value": "snapshots-1"}
    pages = {"index.html": "<h1>Tables</h1>", "snds.beneficiaries.html": "<h1>Beneficiaries</h1>"}
    changed = publish(target, _builder(pages, calls), lambda: mark["value"])
    assert sorted(changed) == sorted(f"wrote {site / name}" for name in [*pages, FINGERPRINT])
    assert (site / "index.html").read_text() == "<h1>Tables</h1>" and (site / FINGERPRINT).read_text() == "snapshots-1"
    assert publish(target, _builder(pages, calls), lambda: mark["value"]) == [] and len(calls) == 1  # no build
    mark["value"] = "snapshots-2"  # a load committed
    pages["index.html"] = "<h1>Tables, after the load</h1>"
    assert f"wrote {site / 'index.html'}" in publish(target, _builder(pages, calls), lambda: mark["value"])
    assert len(calls) == 2 and (site / FINGERPRINT).read_text() == "snapshots-2"


def test_a_site_a_configmap_cannot_hold_is_refused_before_anything_is_put(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "configmap"
    site.mkdir()
    monkeypatch.setattr("santelake.catalogue.publish.MAX_BYTES", 100)
    with pytest.raises(ConfigError, match="more than a ConfigMap holds"):
        publish(FolderTarget(site), _builder({"index.html": "x" * 200}, []), lambda: "1")

    def nested(out: Path) -> None:
        (out / "assets").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"folders \(assets\)"):
        publish(FolderTarget(site), nested, lambda: "2")
    assert list(site.iterdir()) == []


def test_the_server_says_the_catalogue_is_being_built_until_it_is_published(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(FolderHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with pytest.raises(urllib.error.HTTPError) as waiting:
            urllib.request.urlopen(url, timeout=10)
        assert waiting.value.code == 503 and b"being built" in waiting.value.read()
        (tmp_path / "index.html").write_text("<h1>Tables de données</h1>", encoding="utf-8")
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert answer.status == 200 and answer.read().decode("utf-8") == "<h1>Tables de données</h1>"
            assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
            assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
    finally:
        server.shutdown()
        server.server_close()
