"""The local stack serves the catalogue's public view: over verified TLS, every link answering,
the lake's figures in it, nothing loaded from elsewhere, rebuilt on request; and in Chromium, as a
person sees it, the search box finds tables."""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from santelake.catalogue.serve import BUILDS, CURRENT, HEADERS
from santelake.runtime.layout import Layout
from santelake.runtime.services.catalogue import CatalogueServer

pytestmark = pytest.mark.integration

TIMEOUT = 30


@pytest.fixture(scope="module")
def site(layout: Layout) -> str:
    server = CatalogueServer(layout)
    assert server.health().ok, server.health().detail
    return server.url


def _session(layout: Layout) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(layout.tls.ca_cert)
    return session


def test_every_page_and_link_answers_with_the_lakes_figures_and_no_remote_asset(layout: Layout, site: str) -> None:
    browser = _session(layout)
    index = browser.get(f"{site}/index.html", timeout=TIMEOUT)
    assert index.status_code == 200
    assert {name: index.headers.get(name) for name in HEADERS} == HEADERS
    seen, todo = set(), [f"{site}/index.html"]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        page = browser.get(url, timeout=TIMEOUT)
        assert page.status_code == 200, url
        # Nothing from elsewhere: no absolute URL in any src or href, and no protocol-relative one.
        assert not re.findall(r'(?:src|href)="(?:[a-z]+:)?//', page.text), url
        links = re.findall(r'href="([^"#?]+)', page.text) + re.findall(r'"href": "([^"]+)"', page.text)
        todo += [urljoin(url, link) for link in links]
    assert len(seen) >= 6, sorted(seen)
    stays = browser.get(f"{site}/snds.hospital_stays.html", timeout=TIMEOUT).text
    assert "Coverage not measured" not in stays and "never loaded" not in stays, stays[:3000]
    assert re.search(r"<th>last load</th>.*<td>20\d\d-\d\d-\d\d</td></tr>", stays), stays[:3000]
    # Its quality report lists the demo load (ops.ingested_files), published.
    quality = browser.get(f"{site}/snds.hospital_stays.quality.html", timeout=TIMEOUT).text
    assert re.search(r"<tr><td>20\d\d-\d\d-\d\d \d\d:\d\d</td><td>published</td>", quality), quality[:3000]


def test_the_server_is_read_only_and_lists_no_folder(layout: Layout, site: str) -> None:
    browser = _session(layout)
    assert browser.post(f"{site}/index.html", data="x", timeout=TIMEOUT).status_code == 405
    assert browser.get(f"{site}/", timeout=TIMEOUT).status_code == 200  # index.html
    assert browser.get(f"{site}/../secrets/dev-users.json", timeout=TIMEOUT).status_code == 404
    builds = CatalogueServer(layout).site_dir / BUILDS
    assert builds.is_dir()
    assert browser.get(f"{site}/{BUILDS}/", timeout=TIMEOUT).status_code == 404


def test_a_rebuild_on_request_switches_the_served_site(layout: Layout, site: str) -> None:
    server = CatalogueServer(layout)
    current = (server.site_dir / CURRENT).resolve()
    assert server.refresh()
    deadline = time.monotonic() + 300
    while (server.site_dir / CURRENT).resolve() == current:
        assert time.monotonic() < deadline, "no new build within 5 minutes of the request"
        time.sleep(2)
    assert not current.exists(), "the previous build was not removed"
    assert _session(layout).get(f"{site}/index.html", timeout=TIMEOUT).status_code == 200


def _spki_pin(certificate: Path) -> str:
    """Chromium's pin of the server's key (base64 SHA-256 of its SubjectPublicKeyInfo): Chromium trusts
    this one key, instead of our CA, which it has no store for here."""
    key = x509.load_pem_x509_certificate(certificate.read_bytes()).public_key()
    return base64.b64encode(hashlib.sha256(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))
                            .digest()).decode()


def test_a_person_searching_in_chromium_finds_the_tables(layout: Layout, site: str, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: `bash infra/test` installs it (infra/bootstrap.sh dev --for-tests)"
    options = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,900",
               f"--ignore-certificate-errors-spki-list={_spki_pin(layout.tls.server_cert)}"]
    dom = subprocess.run([*options, "--dump-dom", f"{site}/index.html?q=icd-10%20diagnosis"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    results = dom.split('id="results"', 1)[1].split("</ul>", 1)[0]
    assert re.findall(r'href="([^"]+)\.html"', results) == ["ref.icd10_chapters", "snds.hospital_stays"], results
    shot = tmp_path / "catalogue.png"
    subprocess.run([*options, f"--screenshot={shot}", f"{site}/snds.hospital_stays.html"],
                   capture_output=True, text=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000, shot.stat().st_size
