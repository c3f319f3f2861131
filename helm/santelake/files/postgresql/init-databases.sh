#!/bin/sh
# Runs once, when the bundled PostgreSQL initialises its data directory: one role and one
# database per service (SANTELAKE_DATABASES="role=database ..."), each role's password read
# from the file named after it. psql variables quote the values: no SQL is built from them.
set -eu
for pair in $SANTELAKE_DATABASES; do
    role="${pair%%=*}"
    database="${pair#*=}"
    password="$(cat "/var/run/santelake/db-passwords/$role")"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        -v role="$role" -v database="$database" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"database" OWNER :"role";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
SQL
done
