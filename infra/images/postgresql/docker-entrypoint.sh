#!/usr/bin/env bash
# Entrypoint of the santelake/postgresql image: the subset of the docker-library postgres
# image's conventions that helm/santelake (statefulset-postgresql.yaml, files/postgresql/*)
# relies on, over Debian's PostgreSQL packages.
#
#   - arguments starting with "-" are postgres options: `postgres` is put in front;
#   - POSTGRES_USER (default postgres), POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE,
#     POSTGRES_DB (default POSTGRES_USER), POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD,
#     PGDATA (default /var/lib/postgresql/data);
#   - on an empty PGDATA: initdb with that superuser and password, then a temporary server
#     listening on the Unix socket only (with the same -c options, so the chart's hba_file
#     applies), PGPASSWORD exported for it, POSTGRES_DB created, then every
#     /docker-entrypoint-initdb.d/ file in name order: *.sh run if executable, sourced
#     otherwise; *.sql, *.sql.gz, *.sql.xz fed to psql; then the temporary server stops;
#   - started as root, it prepares the directories and re-executes itself as postgres
#     (uid 999) with setpriv; started as any other user it runs as that user.
set -Eeo pipefail

# file_env VAR [DEFAULT]: VAR from $VAR or from the file named by $VAR_FILE, not both.
file_env() {
    local var="$1" fileVar="${1}_FILE" def="${2:-}" val
    if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
        printf >&2 'error: both %s and %s are set (but are exclusive)\n' "$var" "$fileVar"
        exit 1
    fi
    val="$def"
    if [ "${!var:-}" ]; then
        val="${!var}"
    elif [ "${!fileVar:-}" ]; then
        val="$(< "${!fileVar}")"
    fi
    export "$var"="$val"
    unset "$fileVar"
}

setup_env() {
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    file_env POSTGRES_INITDB_ARGS
    : "${POSTGRES_HOST_AUTH_METHOD:=}"
    export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
    DATABASE_ALREADY_EXISTS=
    if [ -s "$PGDATA/PG_VERSION" ]; then
        DATABASE_ALREADY_EXISTS=true
    fi
}

create_directories() {
    local user
    user="$(id -u)"
    mkdir -p "$PGDATA"
    chmod 00700 "$PGDATA" || :
    mkdir -p /var/run/postgresql || :
    # an emptyDir is not ours to chmod (kubelet makes it group-writable for the fsGroup)
    chmod 03775 /var/run/postgresql 2> /dev/null || :
    if [ "$user" = 0 ]; then
        find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
        find /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
    fi
}

verify_minimum_env() {
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
        cat >&2 <<'EOM'
error: the database is uninitialized and the superuser password is not specified.
       Set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE (or, for tests only,
       POSTGRES_HOST_AUTH_METHOD=trust).
EOM
        exit 1
    fi
}

init_database_dir() {
    local args=(--username="$POSTGRES_USER" --pgdata="$PGDATA") pwfile=
    if [ -n "$POSTGRES_PASSWORD" ]; then
        # initdb reads the password from a file, never the process list: a private file in
        # /tmp, removed at once (upstream's <(...) needs /dev/fd, absent in some runtimes).
        pwfile="$(umask 077 && mktemp "${TMPDIR:-/tmp}/initdb-pw.XXXXXX")"
        printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
        args+=(--pwfile="$pwfile")
    fi
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a list of words, as upstream.
    initdb "${args[@]}" $POSTGRES_INITDB_ARGS || { [ -z "$pwfile" ] || rm -f "$pwfile"; return 1; }
    [ -z "$pwfile" ] || rm -f "$pwfile"
}

pg_setup_hba_conf() {
    local auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
    printf '\n%s\n' "host all all all $auth" >> "$PGDATA/pg_hba.conf"
}

process_sql() {
    local query_runner=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
    if [ -n "$POSTGRES_DB" ]; then
        query_runner+=(--dbname "$POSTGRES_DB")
    fi
    # shellcheck disable=SC1007  # the socket, whatever the environment says
    PGHOST= PGHOSTADDR= "${query_runner[@]}" "$@"
}

# shellcheck disable=SC2097,SC2098  # POSTGRES_DB=postgres for psql's connection, the old value as :db
setup_db() {
    local exists
    exists="$(POSTGRES_DB=postgres process_sql --tuples-only --set db="$POSTGRES_DB" <<'SQL'
SELECT 1 FROM pg_database WHERE datname = :'db';
SQL
)"
    if [ -z "$exists" ]; then
        POSTGRES_DB=postgres process_sql --set db="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"db";
SQL
        printf 'docker-entrypoint: database %s created\n' "$POSTGRES_DB"
    fi
}

process_init_files() {
    local f
    for f in /docker-entrypoint-initdb.d/*; do
        [ -e "$f" ] || continue
        case "$f" in
            *.sh)
                if [ -x "$f" ]; then
                    printf 'docker-entrypoint: running %s\n' "$f"
                    "$f"
                else
                    printf 'docker-entrypoint: sourcing %s\n' "$f"
                    # shellcheck disable=SC1090
                    . "$f"
                fi
                ;;
            *.sql) printf 'docker-entrypoint: running %s\n' "$f"; process_sql -f "$f" ;;
            *.sql.gz) printf 'docker-entrypoint: running %s\n' "$f"; gunzip -c "$f" | process_sql ;;
            *.sql.xz) printf 'docker-entrypoint: running %s\n' "$f"; xzcat "$f" | process_sql ;;
            *) printf 'docker-entrypoint: ignoring %s\n' "$f" ;;
        esac
    done
}

temp_server_start() {
    # The same options as the real server (the chart's -c ssl=on, hba_file=...), on the
    # Unix socket only.
    set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
    PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@")" -w start
}

temp_server_stop() {
    PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
}

main() {
    if [ "${1:0:1}" = '-' ]; then
        set -- postgres "$@"
    fi
    if [ "$1" != postgres ]; then
        exec "$@"
    fi
    setup_env
    create_directories
    if [ "$(id -u)" = 0 ]; then
        exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
    fi
    if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
        verify_minimum_env
        init_database_dir
        pg_setup_hba_conf
        # psql needs the password when the hba file asks it on the socket (the chart's does).
        export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
        temp_server_start "${@:2}"
        setup_db
        process_init_files
        temp_server_stop
        unset PGPASSWORD
        printf '\ndocker-entrypoint: PostgreSQL init process complete; ready for start up.\n\n'
    else
        printf '\ndocker-entrypoint: PostgreSQL database directory appears to contain a database; skipping initialization\n\n'
    fi
    exec "$@"
}

main "$@"
