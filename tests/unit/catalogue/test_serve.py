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
