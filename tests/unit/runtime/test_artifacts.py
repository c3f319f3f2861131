import hashlib
from pathlib import Path

import pytest

from santelake.errors import ServiceError
from santelake.runtime.artifacts import KEYCLOAK, TRINO_SERVER, MavenArtifact, fetch_maven


def test_cached_artifact_with_right_checksum_is_used(tmp_path: Path) -> None:
    content = b"pretend distribution"
    artifact = MavenArtifact("org.example", "thing", "1.0", "zip", hashlib.sha256(content).hexdigest())
    path = artifact.path_in(tmp_path / "maven")
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert fetch_maven(artifact, tmp_path) == path


def test_corrupt_cached_artifact_is_removed_and_reported(tmp_path: Path) -> None:
    artifact = MavenArtifact("org.example", "thing", "1.0", "zip", "0" * 64)
    path = artifact.path_in(tmp_path / "maven")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"tampered")
    with pytest.raises(ServiceError, match=r"checksum mismatch for org\.example:thing:1\.0:zip"):
        fetch_maven(artifact, tmp_path)
    assert not path.exists()


def test_pinned_versions() -> None:
    assert TRINO_SERVER.version == "476"
    assert KEYCLOAK.version == "26.7.3"
    assert TRINO_SERVER.path_in(Path("/r")) == Path("/r/io/trino/trino-server/476/trino-server-476.tar.gz")
