"""The served catalogue's builds: a complete build is switched to at once, a failed one leaves the
last good site served, and older builds are removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from santelake.catalogue.serve import BUILDS, Site
from santelake.catalogue.site import CatalogueError


def test_each_complete_build_is_switched_to_and_the_older_removed(tmp_path: Path) -> None:
    counter = iter(range(10))

    def write(out: Path) -> None:
        out.mkdir(parents=True)
        (out / "index.html").write_text(f"build {next(counter)}")

    site = Site(tmp_path, write)
    first = site.rebuild()
    assert (site.current / "index.html").read_text() == "build 0"
    second = site.rebuild()
    assert (site.current / "index.html").read_text() == "build 1"
    assert not first.exists() and [p.name for p in (tmp_path / BUILDS).iterdir()] == [second.name]


def test_a_failed_build_leaves_the_last_good_site_served(tmp_path: Path) -> None:
    def good(out: Path) -> None:
        out.mkdir(parents=True)
        (out / "index.html").write_text("good")

    def broken(out: Path) -> None:
        out.mkdir(parents=True)
        (out / "index.html").write_text("half")
        raise CatalogueError("column x has no description")

    Site(tmp_path, good).rebuild()
    with pytest.raises(CatalogueError, match="no description"):
        Site(tmp_path, broken).rebuild()
    assert (tmp_path / "current" / "index.html").read_text() == "good"
    assert len(list((tmp_path / BUILDS).iterdir())) == 1  # the half build is gone


def test_a_rebuild_is_skipped_while_nothing_it_is_made_from_changed(tmp_path: Path) -> None:
    builds: list[str] = []
    lake = {"snapshot": "1"}

    def write(out: Path) -> None:
        out.mkdir(parents=True)
        builds.append(lake["snapshot"])
        (out / "index.html").write_text(f"snapshot {lake['snapshot']}")

    site = Site(tmp_path, write, fingerprint=lambda: lake["snapshot"])
    assert site.rebuild() is not None
    assert site.rebuild() is None and site.rebuild() is None  # the lake did not change: no scan
    lake["snapshot"] = "2"  # a load committed
    assert site.rebuild() is not None
    assert builds == ["1", "2"] and (site.current / "index.html").read_text() == "snapshot 2"
    assert site.rebuild(force=True) is not None and builds == ["1", "2", "2"]  # asked for: built anyway


def test_a_failed_build_is_tried_again_at_the_next_rebuild(tmp_path: Path) -> None:
    attempts = iter([CatalogueError("the catalog did not answer"), None])

    def write(out: Path) -> None:
        out.mkdir(parents=True)
        error = next(attempts)
        if error:
            raise error
        (out / "index.html").write_text("fine")

    site = Site(tmp_path, write, fingerprint=lambda: "same")
    with pytest.raises(CatalogueError):
        site.rebuild()
    assert site.rebuild() is not None and (site.current / "index.html").read_text() == "fine"
