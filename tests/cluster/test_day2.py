"""Day 2 on the real cluster: an upgrade to a new version of the repository (a changed policy, a
new santelake image) keeps every row and changes the researcher's access as the policy says;
a rollback brings the old access back; a killed Trino worker or Airflow scheduler pod is
replaced and work goes on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from santelake.digest import file_sha256
from santelake.ingest.landing import INCOMING, REJECTED, Landing
from santelake.lake.storage import s3_client
from santelake.synth import synthesize
from tests.cluster.conftest import (
    NAME,
    NAMESPACE,
    REGISTRY,
    RELEASE,
    REPO,
    VALUES,
    Cluster,
    Loaded,
    _timed,
    ca_file,
    once_policy_applies,
    query,
    table_counts,
)

pytestmark = pytest.mark.cluster

# What the upgrade's repository copy takes: everything that goes into the image and the chart.
COPIED = ("src", "dags", "iceberg_schemas", "policies", "infra", "helm", "pyproject.toml", "constraints.txt",
          "README.md", "Dockerfile")
PROJECT = "policies/projects/cardio_outcomes.yaml"
PARIS_REGION = '["75", "77", "78", "91", "92", "93", "94", "95"]'
NEW_VERSION = "0.1.1"


ALICE_BENEFICIARIES = ("SELECT count(*), count_if(residence_department = '75') "
                       "FROM iceberg.snds.beneficiaries")


def _alice_beneficiaries(release: Cluster, ca: Path) -> tuple[int, int]:
    rows = query(release, "alice", ALICE_BENEFICIARIES, ca)
    return int(rows[0][0]), int(rows[0][1])


def _alice_sees(release: Cluster, ca: Path, expected: tuple[int, int]) -> tuple[int, int]:
    """alice's counts once the policy that gives ``expected`` is in force (or the last ones seen)."""
    rows = once_policy_applies(release, "alice", ALICE_BENEFICIARIES, ca, [list(expected)])
    return int(rows[0][0]), int(rows[0][1])


def _santelake_images(release: Cluster) -> set[str]:
    pods = release.json("get", "pods", "-l", "app.kubernetes.io/component=airflow-scheduler")["items"]
    return {c["image"] for p in pods if not p["metadata"].get("deletionTimestamp") for c in p["spec"]["containers"]}


def _revision(release: Cluster) -> int:
    history = json.loads(subprocess.run([release.helm, "history", RELEASE, "-n", NAMESPACE, "-o", "json"],
                                        env=release.env, capture_output=True, text=True, check=True).stdout)
    return int(history[-1]["revision"])


def _new_version(tmp_path: Path) -> Path:
    """A copy of the repository as its next version would be: the project narrowed to Paris, version bumped."""
    copy = tmp_path / "repo"
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, copy / name)
    project = copy / PROJECT
    text = project.read_text()
    assert PARIS_REGION in text, f"{PROJECT} no longer filters on {PARIS_REGION}: update this test"
    project.write_text(text.replace(PARIS_REGION, '["75"]'))
    pyproject = copy / "pyproject.toml"
    version = 'version = "0.1.0"'
    assert version in pyproject.read_text()
    pyproject.write_text(pyproject.read_text().replace(version, f'version = "{NEW_VERSION}"', 1))
    return copy


def test_an_upgrade_with_a_changed_policy_and_image_keeps_every_row_and_a_rollback_undoes_it(
        release: Cluster, loaded: Loaded, tmp_path: Path) -> None:
    ca = ca_file(release, tmp_path)
    rows = table_counts(release, ca)
    region, paris = _alice_beneficiaries(release, ca)
    assert 0 < paris < region, (paris, region)
    # Her project's row filter is in force: she counts exactly the region's beneficiaries, not all.
    departments = ", ".join(f"'{d}'" for d in json.loads(PARIS_REGION))
    assert query(release, "dana", "SELECT count(*) FROM iceberg.snds.beneficiaries "
                                  f"WHERE residence_department IN ({departments})", ca) == [[region]]
    before = _revision(release)
    old_images = _santelake_images(release)

    copy = _new_version(tmp_path)
    _timed("new santelake image built", ["bash", str(copy / "infra" / "images" / "build"), "santelake"], timeout=1800)
    _timed("new santelake image pushed", ["bash", str(copy / "infra" / "images" / "push"), REGISTRY, "santelake"],
           timeout=600)
    chart = copy / "helm" / "santelake"
    santelake = str(REPO / ".venv" / "bin" / "santelake")
    _timed("santelake render (new policy)", [santelake, "render", "--chart", str(chart)], timeout=300,
           env=dict(os.environ, SANTELAKE_POLICIES_DIR=str(copy / "policies")))
    _timed("helm upgrade --wait", [release.helm, "upgrade", RELEASE, str(chart), "-n", NAMESPACE, "-f", str(VALUES),
                                   "--set", f"images.santelake.tag={NEW_VERSION}", "--wait", "--timeout", "20m"],
           timeout=1500, env=release.env)
    try:
        assert _santelake_images(release) == {f"{REGISTRY}/santelake/santelake:{NEW_VERSION}"}
        assert table_counts(release, ca) == rows
        assert _alice_sees(release, ca, (paris, paris)) == (paris, paris)
    finally:
        _timed("helm rollback --wait", [release.helm, "rollback", RELEASE, str(before), "-n", NAMESPACE,
                                        "--wait", "--timeout", "20m"], timeout=1500, env=release.env)
    assert _santelake_images(release) == old_images
    assert table_counts(release, ca) == rows
    assert _alice_sees(release, ca, (region, paris)) == (region, paris)


def _ready_pods(release: Cluster, component: str) -> set[str]:
    pods = release.json("get", "pods", "-l", f"app.kubernetes.io/component={component}")["items"]
    return {p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")
            and all(c.get("ready") for c in p["status"].get("containerStatuses", []) or [{}])}


def _kill_and_wait_for_replacement(release: Cluster, component: str, count: int) -> str:
    """Force-delete one ready pod of ``component`` (no grace: as a node would lose it) and wait until
    ``count`` ready pods run again, the killed one not among them. Returns the killed pod's name."""
    victim = sorted(_ready_pods(release, component))[0]
    started = time.monotonic()
    release.run("delete", "pod", victim, "--grace-period=0", "--force", "--wait=false")
    while True:
        ready = _ready_pods(release, component)
        if len(ready) >= count and victim not in ready:
            break
        assert time.monotonic() - started < 600, f"{component}: {ready} ready 10 minutes after killing {victim}"
        time.sleep(3)
    print(f"\n[cluster] {component} {victim} killed; replaced and ready in {time.monotonic() - started:.0f} s")
    return victim


def test_a_killed_trino_worker_is_replaced_and_queries_go_on(release: Cluster, loaded: Loaded, tmp_path: Path) -> None:
    ca = ca_file(release, tmp_path)
    expected = table_counts(release, ca)
    killed = _kill_and_wait_for_replacement(release, "trino-worker", 2)
    pods = _ready_pods(release, "trino-worker")
    started = time.monotonic()
    while True:  # the coordinator forgets the dead node and learns of the new one (node ids are pod names)
        # system.runtime.nodes is the platform admins' to read (policies/: platform_admin).
        active = {str(row[0]) for row in query(release, "pat", "SELECT node_id FROM system.runtime.nodes "
                                               "WHERE coordinator = false AND state = 'active'", ca)}
        if active == pods:
            break
        assert time.monotonic() - started < 300, f"active workers {active}, 5 minutes after {killed} was replaced " \
                                                 f"by {pods}"
        time.sleep(5)
    assert table_counts(release, ca) == expected


def _scheduler_log(release: Cluster) -> str:
    """The scheduler's last lines (its tasks' outcomes), for a failure's message."""
    result = subprocess.run([release.kubectl, "-n", release.namespace, "logs", "deploy/" + f"{NAME}-airflow-scheduler",
                             "--tail", "60"], capture_output=True, text=True, env=release.env, check=False, timeout=60)
    return result.stdout[-6000:] + result.stderr[-1000:]


def test_a_killed_scheduler_is_replaced_and_loads_go_on(release: Cluster, loaded: Loaded, tmp_path: Path) -> None:
    ca = ca_file(release, tmp_path)
    _kill_and_wait_for_replacement(release, "airflow-scheduler", 1)
    # Content of its own: a file with the bytes of one loaded before would be skipped as already loaded.
    report = synthesize(tmp_path / "extracts", scale=300, seed=time.time_ns() % 2**31)
    item = next(f for f in report.files if f.table == "beneficiaries")
    name = f"after-the-scheduler-died-{time.time_ns()}.csv"
    with release.forward(f"svc/{NAME}-minio", 9000) as port:
        client = s3_client(f"localhost:{port}", release.secret("santelake-s3-ingest", "access-key"),
                           release.secret("santelake-s3-ingest", "secret-key"), ca)
        landing = Landing(client, "santelake-landing")
        key = landing.land(item.table, Path(item.path), name)
        started = time.monotonic()
        while key in {o.key for o in landing.objects(INCOMING)}:
            assert time.monotonic() - started < 600, "the new scheduler did not load the extract within 10 minutes"
            time.sleep(5)
        refused = [o.reason for o in landing.objects(REJECTED) if o.name == name]
    assert not refused, f"the extract landed after the scheduler's death was rejected: {refused}"
    print(f"\n[cluster] an extract landed after the scheduler's death loaded in {time.monotonic() - started:.0f} s")
    # By content: a record names the file as it was first loaded.
    sha = file_sha256(Path(item.path))
    statement = (f"SELECT status, file_name, row_count + quarantined_count + coalesce(unchanged_count, 0) "
                 f"FROM iceberg.ops.ingested_files WHERE file_sha256 = '{sha}'")
    asked, looks = time.monotonic(), 1
    # The record is committed before the extract leaves incoming/; should Trino show it late,
    # say how late rather than fail on the first look.
    while not (records := query(release, "dana", statement, ca)) and time.monotonic() - asked < 60:
        time.sleep(5)
        looks += 1
    if looks > 1:
        print(f"\n[cluster] the load's record was visible through Trino only after {time.monotonic() - asked:.0f} s")
    assert records == [["published", name, item.rows]], (records, _scheduler_log(release))
