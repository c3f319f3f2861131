"""The facts the image build takes from the repository, printed as shell assignments.

Nothing is imported from the santelake package (its dependencies may be absent): the pinned
values are read from the source with ``ast`` (literals only), the package version from
pyproject.toml, and the run stage of the Dockerfile (its ENV, USER, WORKDIR and CMD lines),
so that the images follow the same single sources the local runtime and the Dockerfile use.

    eval "$(python3 infra/images/meta.py REPO)"
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import sys
import tomllib
from pathlib import Path

# The PATH of the Dockerfile's base image (python:3.11-slim-bookworm), which its ENV extends.
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def assignments(path: Path) -> dict[str, ast.expr]:
    tree = ast.parse(path.read_text(), str(path))
    found: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
    return found


def maven(call: ast.expr) -> dict[str, str]:
    """A MavenArtifact(group, artifact, version, packaging, sha256, classifier=...) literal."""
    assert isinstance(call, ast.Call), ast.dump(call)
    names = ["group", "artifact", "version", "packaging", "sha256"]
    values = {name: ast.literal_eval(arg) for name, arg in zip(names, call.args, strict=False)}
    values.update({kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg})
    return values


def dockerfile_run_stage(path: Path) -> dict[str, object]:
    """ENV, USER, WORKDIR and CMD of the Dockerfile's last stage (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages = re.split(r"(?m)^FROM\s", text)
    env: dict[str, str] = {}
    user = workdir = ""
    cmd: list[str] = []
    for line in stages[-1].splitlines():
        line = line.strip()
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                path = env.get("PATH", BASE_PATH)
                value = value.replace("$PATH", path).replace("${PATH}", path)
                env[key] = value
        elif line.startswith("USER "):
            user = line[5:].strip()
        elif line.startswith("WORKDIR "):
            workdir = line[8:].strip()
        elif line.startswith("CMD "):
            cmd = json.loads(line[4:])
    return {"env": env, "user": user, "workdir": workdir, "cmd": cmd}


def main() -> None:
    repo = Path(sys.argv[1])
    src = repo / "src" / "santelake"
    artifacts = assignments(src / "runtime" / "artifacts.py")
    trino = maven(artifacts["TRINO_SERVER"])
    keycloak = maven(artifacts["KEYCLOAK"])
    plugins = ast.literal_eval(assignments(src / "render" / "trino.py")["PLUGINS"])
    build_options = ast.literal_eval(assignments(src / "runtime" / "services" / "keycloak.py")["BUILD_OPTIONS"])
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    stage = dockerfile_run_stage(repo / "Dockerfile")
    out: dict[str, str | list[str]] = {
        "SANTELAKE_VERSION": project["version"],
        "TRINO_VERSION": trino["version"],
        "TRINO_SHA256": trino["sha256"],
        "TRINO_PATH": "/".join([*trino["group"].split("."), trino["artifact"], trino["version"],
                                f"{trino['artifact']}-{trino['version']}.{trino['packaging']}"]),
        "TRINO_PLUGINS": list(plugins),
        "KEYCLOAK_VERSION": keycloak["version"],
        "KEYCLOAK_SHA256": keycloak["sha256"],
        "KEYCLOAK_PATH": "/".join([*keycloak["group"].split("."), keycloak["artifact"], keycloak["version"],
                                   f"{keycloak['artifact']}-{keycloak['version']}.{keycloak['packaging']}"]),
        "KEYCLOAK_BUILD_OPTIONS": list(build_options),
        "MINIO_VERSION": ast.literal_eval(artifacts["MINIO_VERSION"]),
        "DOCKERFILE_ENV": [f"{k}={v}" for k, v in stage["env"].items()],  # type: ignore[union-attr]
        "DOCKERFILE_USER": str(stage["user"]),
        "DOCKERFILE_WORKDIR": str(stage["workdir"]),
        "DOCKERFILE_CMD": list(stage["cmd"]),  # type: ignore[call-overload]
    }
    for name, value in out.items():
        if isinstance(value, list):
            print(f"{name}=({' '.join(shlex.quote(v) for v in value)})")
        else:
            print(f"{name}={shlex.quote(value)}")


if __name__ == "__main__":
    main()
