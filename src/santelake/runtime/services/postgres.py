"""PostgreSQL: the Iceberg JDBC catalog, Keycloak's and Airflow's databases.

Debian's server binaries, a cluster under ``<state>/postgres``, TLS only, SCRAM passwords,
loopback only, no Unix socket. PostgreSQL refuses to run as root, so under root the
cluster belongs to the ``postgres`` system user that Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
from pathlib import Path
from typing import Any

from santelake.errors import PrerequisiteError
from santelake.files import write_private
from santelake.names import DATABASES
from santelake.runtime.process import ProcessSpec, run_checked
from santelake.runtime.services.base import Health, Service

SUPERUSER = "postgres"


def find_bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for candidate in reversed(candidates):
        if (Path(candidate) / "postgres").exists():
            return Path(candidate)
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise PrerequisiteError(
        "PostgreSQL server binaries not found; install them with "
        "`apt-get update && apt-get install -y postgresql`"
    )


def role_password_key(role: str) -> str:
    return f"postgres-{role}-password"


class Postgres(Service):
    name = "postgres"
    port_keys = ("postgres",)

    @property
    def directory(self) -> Path:
        return self.layout.service_dir("postgres")

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def run_as(self) -> str | None:
        return SUPERUSER if os.geteuid() == 0 else None

    def _chown(self, path: Path) -> None:
        if self.run_as is None:
            return
        entry = pwd.getpwnam(self.run_as)
        os.chown(path, entry.pw_uid, entry.pw_gid)

    def _check_traversable(self) -> None:
        """Under root, the postgres user must reach its data directory."""
        if self.run_as is None:
            return
        try:
            pwd.getpwnam(self.run_as)
        except KeyError as exc:
            raise PrerequisiteError(
                "running as root needs the `postgres` system user: `apt-get install -y postgresql` creates it"
            ) from exc
        for parent in reversed(self.directory.parents):
            if parent.exists() and not (parent.stat().st_mode & 0o001):
                raise PrerequisiteError(
                    f"{parent} is not traversable by the postgres user, which runs the database under root; "
                    f"run `chmod o+x {parent}` or choose another --state-dir"
                )

    def prepare(self) -> None:
        bin_dir = find_bin_dir()
        self._check_traversable()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o711)
        if not (self.data_dir / "PG_VERSION").exists():
            password = self.layout.secrets.get("postgres-superuser-password")
            pwfile = self.directory / "initdb-password"
            write_private(pwfile, password + "\n")
            self._chown(pwfile)
            self.data_dir.mkdir(mode=0o700, exist_ok=True)
            self._chown(self.data_dir)
            try:
                run_checked(
                    [str(bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, f"--pwfile={pwfile}",
                     "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"],
                    "initdb", user=self.run_as,
                )
            finally:
                pwfile.unlink(missing_ok=True)
        tls = self.layout.tls
        for source, target in ((tls.server_cert, "server.crt"), (tls.server_key, "server.key")):
            write_private(self.data_dir / target, source.read_bytes())
            self._chown(self.data_dir / target)
        settings = self.layout.settings
        conf = "\n".join([
            "# written by santelake; edit santelake's settings instead",
            f"listen_addresses = '{settings.bind_host}'",
            f"port = {settings.postgres_port}",
            "unix_socket_directories = ''",
            "ssl = on",
            "ssl_cert_file = 'server.crt'",
            "ssl_key_file = 'server.key'",
            "ssl_min_protocol_version = 'TLSv1.2'",
            "password_encryption = 'scram-sha-256'",
            "max_connections = 100",
            "shared_buffers = '128MB'",
            "logging_collector = off",
            "",
        ])
        hba = "\n".join([
            "# written by santelake: TLS and SCRAM from loopback, nothing else",
            "hostssl all all 127.0.0.1/32 scram-sha-256",
            "hostssl all all ::1/128 scram-sha-256",
            "",
        ])
        for name, content in (("santelake.conf", conf), ("pg_hba.conf", hba)):
            write_private(self.data_dir / name, content)
            self._chown(self.data_dir / name)
        main_conf = self.data_dir / "postgresql.conf"
        include = "include = 'santelake.conf'\n"
        if include not in main_conf.read_text():
            with main_conf.open("a") as handle:
                handle.write(include)

    def processes(self) -> list[ProcessSpec]:
        command = [str(find_bin_dir() / "postgres"), "-D", str(self.data_dir)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
        return [self.spec(command, env, user=self.run_as, stop_signal=signal.SIGINT)]

    def connect(self, database: str = "postgres", role: str = SUPERUSER, password: str | None = None) -> Any:
        from santelake.settings import postgres_connect

        if password is None:
            password = self.layout.secrets.get(
                "postgres-superuser-password" if role == SUPERUSER else role_password_key(role)
            )
        settings = self.layout.settings
        return postgres_connect(settings.hostname, settings.postgres_port, role, password, database,
                                self.layout.tls.ca_cert, timeout=3)

    def health(self) -> Health:
        import psycopg2

        try:
            with self.connect() as conn, conn.cursor() as cur:
                cur.execute("select version()")
                row = cur.fetchone()
            conn.close()
        except psycopg2.Error as exc:
            return Health(False, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        return Health(True, str(row[0]).split(",")[0] if row else "up")

    def after_start(self) -> None:
        from psycopg2 import sql

        conn = self.connect()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                for role, database in DATABASES.items():
                    password = self.layout.secrets.get(role_password_key(role))
                    cur.execute("select 1 from pg_roles where rolname = %s", (role,))
                    verb = "alter" if cur.fetchone() else "create"
                    cur.execute(sql.SQL(verb + " role {} with login password {}").format(
                        sql.Identifier(role), sql.Literal(password)))
                    cur.execute("select 1 from pg_database where datname = %s", (database,))
                    if cur.fetchone() is None:
                        cur.execute(sql.SQL("create database {} owner {}").format(
                            sql.Identifier(database), sql.Identifier(role)))
                    cur.execute(sql.SQL("revoke all on database {} from public").format(sql.Identifier(database)))
        finally:
            conn.close()
        from santelake.audit import store

        store.install(lambda database: self.connect(database),
                      {role: self.layout.secrets.get(role_password_key(role)) for role in (store.WRITER, store.READER)})
