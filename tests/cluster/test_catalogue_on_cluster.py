"""The chart's public catalogue: the scheduler's `catalogue` DAG publishes it from the lake into the
ConfigMap the catalogue's server mounts, and the server (no account of the lake) serves it over HTTPS."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from santelake.catalogue.publish import FINGERPRINT
from tests.cluster.conftest import NAME, Cluster, Loaded, ca_file, resolved

pytestmark = pytest.mark.cluster


def test_the_scheduler_publishes_the_public_catalogue_and_its_server_serves_it(
        release: Cluster, loaded: Loaded, tmp_path: Path) -> None:
    ca = ca_file(release, tmp_path)
    site = f"{NAME}-catalogue-site"
    # The DAG runs every 15 minutes; a run now, after the loads, rather than wait for the next.
    release.run("exec", f"deploy/{NAME}-airflow-scheduler", "-c", "scheduler", "--",
                "airflow", "dags", "trigger", "catalogue", timeout=300)
    started = time.monotonic()
    while True:
        data = release.json("get", "configmap", site).get("data") or {}
        pages = data.get("snds.beneficiaries.html", "")
        # A run before the loads (the DAG's first, at install) published "never loaded": wait for the figures.
        if FINGERPRINT in data and "<th>last load</th>" in pages and "never loaded" not in pages:
            break
        assert time.monotonic() - started < 900, f"the catalogue DAG did not publish within 15 minutes: {sorted(data)}"
        time.sleep(10)
    print(f"\n[cluster] catalogue published by the scheduler in {time.monotonic() - started:.0f} s: "
          f"{len(data) - 1} pages")
    # The server holds no account: no secret in its environment, no service account token.
    pod = release.json("get", "deploy", f"{NAME}-catalogue")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert [e["name"] for e in pod["containers"][0]["env"]] == ["HOME"]

    url = f"https://{NAME}-catalogue:8443"
    with resolved(release, {f"{NAME}-catalogue": 8443}):
        started = time.monotonic()
        while True:  # the kubelet refreshes a mounted ConfigMap within about a minute
            index = requests.get(f"{url}/index.html", verify=str(ca), timeout=30)
            if index.status_code == 200:
                break
            assert index.status_code == 503 and "being built" in index.text, (index.status_code, index.text[:300])
            assert time.monotonic() - started < 300, "the catalogue's server did not see the published pages"
            time.sleep(10)
        print(f"[cluster] served {time.monotonic() - started:.0f} s after the publish")
        assert "snds.beneficiaries" in index.text and index.headers["Content-Security-Policy"].startswith(
            "default-src 'none'")
        while True:
            page = requests.get(f"{url}/snds.beneficiaries.html", verify=str(ca), timeout=30)
            assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
            # What the scheduler published, as published (accents included). The server may still
            # hold an earlier publish (the DAG's run at install, before any table existed) until the
            # kubelet refreshes the mounted ConfigMap.
            if page.text == pages:
                break
            assert time.monotonic() - started < 300, "the catalogue's server still serves an earlier publish"
            time.sleep(10)
        assert requests.post(f"{url}/index.html", verify=str(ca), timeout=30).status_code == 405
